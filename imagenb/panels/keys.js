// Keyboard shortcuts of imagenb's panel (imagenb/masks/panel_keys.py), an anywidget ES module:
// Ctrl/Cmd+Enter generates, Esc closes the enlarged view. It listens on the window in the
// capture phase, so inside the panel it answers before JupyterLab's own shortcuts (Ctrl+Enter
// would run the cell); outside the panel it does nothing.

function render({ model, el }) {
  const panel = () => el.closest(".imagenb-panel");
  const onKey = (event) => {
    const root = panel();
    if (!root || !root.contains(event.target)) return;
    if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) {
      event.preventDefault();
      event.stopPropagation();
      model.send({ key: "generate" });
    } else if (event.key === "Escape") {
      const viewer = root.querySelector(".ipanel-viewer");
      if (!viewer || viewer.offsetParent === null) return; // not open: Esc stays Lab's
      event.preventDefault();
      event.stopPropagation();
      model.send({ key: "escape" });
    }
  };
  window.addEventListener("keydown", onKey, true);
  return () => window.removeEventListener("keydown", onKey, true);
}

export default { render };
