// The view of imagenb's mask painter (imagenb/masks/painter.py), an anywidget ES module.
//
// Strokes are drawn at once on the overlay canvas (display size) and, when finished, sent to
// the kernel as float32 (x, y) points in image pixels: a binary message buffer. The kernel
// paints them into the full-resolution mask and answers with the overlay at display size and
// the number of the last operation it applied (`_acked`); operations not yet applied are
// drawn again on top, so the view never loses a stroke while the kernel catches up.

const TINT = "rgb(255, 0, 96)";

function element(tag, className, parent) {
  const node = document.createElement(tag);
  node.className = className;
  if (parent) parent.appendChild(node);
  return node;
}

function button(parent, label, title, onClick) {
  const node = element("button", "imagenb-painter-button", parent);
  node.type = "button";
  node.textContent = label;
  node.title = title;
  node.dataset.action = label.toLowerCase();
  node.addEventListener("click", onClick);
  return node;
}

function bytesOf(value) {
  // A synced bytes trait arrives as a DataView (or an ArrayBuffer): the bytes it views.
  if (value instanceof DataView) return new Uint8Array(value.buffer, value.byteOffset, value.byteLength);
  return new Uint8Array(value);
}

function render({ model, el }) {
  const root = element("div", "imagenb-painter", el);
  const bar = element("div", "imagenb-painter-bar", root);
  const stage = element("div", "imagenb-painter-stage", root);
  const picture = element("img", "imagenb-painter-picture", stage);
  const overlay = element("canvas", "imagenb-painter-overlay", stage);
  const guide = element("canvas", "imagenb-painter-guide", stage);
  const status = element("div", "imagenb-painter-status", root);
  picture.alt = "the image to paint a mask on";
  picture.draggable = false;

  const W = model.get("width");
  const H = model.get("height");
  const tools = {};
  for (const [name, title] of [
    ["brush", "paint the area to edit"],
    ["eraser", "take paint away"],
    ["rectangle", "paint a rectangle: drag from corner to corner"],
  ]) {
    tools[name] = button(bar, name[0].toUpperCase() + name.slice(1), title, () => {
      model.set("tool", name);
      model.save_changes();
    });
  }
  const sizeLabel = element("label", "imagenb-painter-size", bar);
  sizeLabel.textContent = "Size ";
  const size = element("input", "imagenb-painter-size-input", sizeLabel);
  size.type = "range";
  size.min = "2";
  size.max = String(Math.max(8, Math.round(Math.max(W, H) / 4)));
  size.title = "brush diameter in image pixels";
  size.addEventListener("input", () => {
    model.set("brush", Number(size.value));
    model.save_changes();
  });
  let seq = 0;
  const pending = []; // operations sent but not yet applied by the kernel
  const send = (content, points) => {
    seq += 1;
    const op = { ...content, seq };
    if (points) pending.push({ ...op, points });
    const buffers = points ? [new Float32Array(points.flat()).buffer] : [];
    model.send(op, undefined, buffers);
  };
  button(bar, "Invert", "paint what is not painted, and the other way round", () => send({ op: "invert" }));
  button(bar, "Clear", "take all the paint away", () => send({ op: "clear" }));
  const undo = button(bar, "Undo", "take back the last change (Ctrl+Z)", () => send({ op: "undo" }));

  const g = overlay.getContext("2d");
  const cursor = guide.getContext("2d");
  const url = () => {
    const blob = new Blob([bytesOf(model.get("_picture"))], { type: model.get("_picture_mime") });
    return URL.createObjectURL(blob);
  };
  picture.src = url();

  // image pixels <-> display pixels
  const scale = () => overlay.width / W;
  const toImage = (event) => {
    const box = stage.getBoundingClientRect();
    const x = ((event.clientX - box.left) / box.width) * W;
    const y = ((event.clientY - box.top) / box.height) * H;
    return [Math.min(W, Math.max(0, x)), Math.min(H, Math.max(0, y))];
  };

  function drawOp(op) {
    const s = scale();
    g.save();
    g.globalCompositeOperation = op.erase ? "destination-out" : "source-over";
    g.fillStyle = g.strokeStyle = TINT;
    if (op.op === "rectangle") {
      const [[x0, y0], [x1, y1]] = op.points;
      g.fillRect(Math.min(x0, x1) * s, Math.min(y0, y1) * s, Math.abs(x1 - x0) * s, Math.abs(y1 - y0) * s);
    } else {
      g.lineWidth = op.size * s;
      g.lineCap = g.lineJoin = "round";
      g.beginPath();
      const [fx, fy] = op.points[0];
      g.moveTo(fx * s, fy * s);
      for (const [x, y] of op.points) g.lineTo(x * s, y * s);
      if (op.points.length === 1) g.lineTo(fx * s + 0.01, fy * s);
      g.stroke();
    }
    g.restore();
  }

  let base = null; // the kernel's overlay, decoded
  let current = null; // the operation being drawn
  async function loadOverlay() {
    const acked = model.get("_acked");
    while (pending.length && pending[0].seq <= acked) pending.shift();
    const blob = new Blob([bytesOf(model.get("_overlay"))], { type: "image/png" });
    const bitmap = await createImageBitmap(blob);
    if (overlay.width !== bitmap.width || overlay.height !== bitmap.height) {
      overlay.width = guide.width = bitmap.width;
      overlay.height = guide.height = bitmap.height;
    }
    if (base) base.close();
    base = bitmap;
    redraw();
  }

  function redraw() {
    g.clearRect(0, 0, overlay.width, overlay.height);
    if (base) g.drawImage(base, 0, 0);
    for (const op of pending) drawOp(op);
    if (current) drawOp(current);
  }

  function showState() {
    const tool = model.get("tool");
    for (const [name, node] of Object.entries(tools)) node.classList.toggle("imagenb-painter-on", name === tool);
    size.value = String(model.get("brush"));
    undo.disabled = !model.get("can_undo");
    const painted = (100 * model.get("painted")).toFixed(1);
    status.textContent = `${painted}% painted · ${tool} · ${model.get("brush")} px · image ${W}x${H}`;
  }

  // pointer events: mouse, touch and pen alike
  function showCursor(event) {
    cursor.clearRect(0, 0, guide.width, guide.height);
    if (!event || model.get("tool") === "rectangle") return;
    const [x, y] = toImage(event);
    const s = scale();
    cursor.strokeStyle = "rgba(0, 0, 0, 0.7)";
    cursor.beginPath();
    cursor.arc(x * s, y * s, Math.max(1, (model.get("brush") * s) / 2), 0, 2 * Math.PI);
    cursor.stroke();
  }
  stage.addEventListener("pointerdown", (event) => {
    if (event.pointerType === "mouse" && event.button !== 0) return;
    event.preventDefault();
    try {
      stage.setPointerCapture(event.pointerId); // strokes may leave the picture and come back
    } catch {
      // a pointer the browser no longer tracks: the stroke still works inside the picture
    }
    const tool = model.get("tool");
    const point = toImage(event);
    current = tool === "rectangle"
      ? { op: "rectangle", erase: false, points: [point, point] }
      : { op: "stroke", erase: tool === "eraser", size: model.get("brush"), points: [point] };
    redraw();
  });
  stage.addEventListener("pointermove", (event) => {
    showCursor(event);
    if (!current) return;
    const events = event.getCoalescedEvents ? event.getCoalescedEvents() : [event];
    if (current.op === "rectangle") current.points[1] = toImage(event);
    else for (const e of events.length ? events : [event]) current.points.push(toImage(e));
    redraw();
  });
  const finish = (event) => {
    if (!current) return;
    if (event.type === "pointercancel") {
      current = null;
      redraw();
      return;
    }
    const { points, ...content } = current;
    current = null;
    send(content, points);
  };
  stage.addEventListener("pointerup", finish);
  stage.addEventListener("pointercancel", finish);
  stage.addEventListener("pointerleave", () => showCursor(null));
  // Ctrl/Cmd+Z undoes while the painter has the focus. Listening on the window in the capture
  // phase answers before JupyterLab's own shortcuts (which would undo in the notebook).
  root.tabIndex = 0;
  stage.addEventListener("pointerdown", () => root.focus({ preventScroll: true }));
  const onKey = (event) => {
    if (!root.contains(event.target)) return;
    if ((event.ctrlKey || event.metaKey) && event.key.toLowerCase() === "z") {
      event.preventDefault();
      event.stopPropagation();
      send({ op: "undo" });
    }
  };
  window.addEventListener("keydown", onKey, true);

  const onOverlay = () => loadOverlay();
  model.on("change:_overlay", onOverlay);
  model.on("change:tool change:brush change:painted change:can_undo", showState);
  showState();
  loadOverlay();
  return () => {
    window.removeEventListener("keydown", onKey, true);
    model.off("change:_overlay", onOverlay);
    model.off("change:tool change:brush change:painted change:can_undo", showState);
    URL.revokeObjectURL(picture.src);
    if (base) base.close();
  };
}

export default { render };
