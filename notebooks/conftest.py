"""nbval settings for the notebooks: images and widget state are not compared (their bytes
vary across platforms); text and tables are."""


def pytest_collectstart(collector):
    if collector.fspath and collector.fspath.ext == ".ipynb":
        collector.skip_compare += ("image/png", "application/vnd.jupyter.widget-view+json")


# The notebooks that train the most start first, so that two pytest workers end together
# (longest first; a fresh runs folder on a 2-core Xeon: 05 and 07 train the tables' models
# and more for about 5 minutes each, 08 its ablation, 03 four seeds of CMN); every other
# notebook after them in name order. `make test` passes --no-loadscope-reorder, so that
# pytest-xdist keeps this order instead of ordering the notebooks by their number of cells.
TRAINS_MOST = ("07_", "05_", "08_", "03_")


def pytest_collection_modifyitems(items):
    def rank(item) -> int:
        name = item.fspath.basename
        return next((i for i, prefix in enumerate(TRAINS_MOST) if name.startswith(prefix)), len(TRAINS_MOST))
    items.sort(key=rank)  # stable: each notebook's cells keep their order
