"""``medallion docs``: the pipeline's own documentation as a static site that works offline.

:mod:`pipelines.docs.graph` draws the table graph (pure SVG, no JavaScript); :mod:`pipelines.docs.site`
gathers what the site shows (declarations, Delta history, data-quality results, quarantine counts, the
model registry) and writes the pages.
"""
