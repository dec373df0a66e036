"""nbval settings for the notebooks: images and widget state are not compared (their bytes
vary across platforms); text and tables are."""


def pytest_collectstart(collector):
    if collector.fspath and collector.fspath.ext == ".ipynb":
        collector.skip_compare += ("image/png", "application/vnd.jupyter.widget-view+json")
