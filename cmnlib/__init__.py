"""cmnlib: the reference companion for "Multimodal Sentiment Analysis Based On Cross-Module
Fusion" (CMN; Zhang & Li 2023).

Sub-modules: :mod:`cmnlib.data` (real formats and the synthetic stand-in),
:mod:`cmnlib.model` (SA, GA, MUA, CMN and baselines), :mod:`cmnlib.train`,
:mod:`cmnlib.metrics`, :mod:`cmnlib.tables`, :mod:`cmnlib.plots`, :mod:`cmnlib.reproduce`.
"""
__version__ = "0.1.0"
