"""The ipywidgets panel: prompt to images without blocking the kernel."""
