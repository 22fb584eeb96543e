// Two images compared (imagenb/masks/compare_view.py), an anywidget ES module: side by side,
// or one over the other with a slider that uncovers the second from the left.

function picture(model, name) {
  const img = document.createElement("img");
  const value = model.get(name);
  const bytes = value instanceof DataView
    ? new Uint8Array(value.buffer, value.byteOffset, value.byteLength)
    : new Uint8Array(value);
  img.src = URL.createObjectURL(new Blob([bytes], { type: model.get("mime") }));
  img.draggable = false;
  return img;
}

function render({ model, el }) {
  const root = document.createElement("div");
  root.className = "imagenb-compare-view";
  const bar = document.createElement("div");
  bar.className = "imagenb-compare-bar";
  const mode = document.createElement("button");
  mode.type = "button";
  mode.className = "imagenb-compare-mode";
  const slider = document.createElement("input");
  slider.type = "range";
  slider.min = "0";
  slider.max = "100";
  slider.value = "50";
  slider.className = "imagenb-compare-slider";
  slider.title = "slide to uncover the second image";
  bar.append(mode, slider);
  const stage = document.createElement("div");
  const [a, b] = [picture(model, "_left"), picture(model, "_right")];
  const labels = [model.get("left_label"), model.get("right_label")].map((text) => {
    const span = document.createElement("span");
    span.className = "imagenb-compare-label";
    span.textContent = text;
    return span;
  });
  stage.append(a, b, ...labels);
  root.append(bar, stage);
  el.appendChild(root);

  const show = () => {
    const sideBySide = model.get("side_by_side");
    stage.className = sideBySide ? "imagenb-compare-side" : "imagenb-compare-stack";
    mode.textContent = sideBySide ? "Slider" : "Side by side";
    slider.style.display = sideBySide ? "none" : "";
    b.style.clipPath = sideBySide ? "" : `inset(0 0 0 ${slider.value}%)`;
  };
  mode.addEventListener("click", () => {
    model.set("side_by_side", !model.get("side_by_side"));
    model.save_changes();
  });
  slider.addEventListener("input", show);
  model.on("change:side_by_side", show);
  show();
  return () => {
    model.off("change:side_by_side", show);
    URL.revokeObjectURL(a.src);
    URL.revokeObjectURL(b.src);
  };
}

export default { render };
