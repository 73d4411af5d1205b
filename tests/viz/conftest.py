"""The viz tests draw headless: matplotlib renders to the Agg back-end (no display)."""

import matplotlib

matplotlib.use("Agg")
