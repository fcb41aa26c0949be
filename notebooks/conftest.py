"""pytest --nbval notebooks: build matplotlib's font cache before any notebook kernel starts.

On a fresh machine the first `import matplotlib.pyplot` logs "Matplotlib is building the font
cache" to stderr, which strict nbval would see as an unexpected output of that notebook's cell.
"""
import matplotlib

matplotlib.use("Agg")
import matplotlib.font_manager
