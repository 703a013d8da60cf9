"""Data set loaders: each data set's own on-disk layout → manifest + RGB images.

Why one module per data set: every collection ships a different layout (CSV rows,
video-sequence folders, coded file names), and a broken input must be reported as
"this file broke this expectation". Loaders share the contract of ``base.py`` and are
registered, lazily, in ``fer_ray.data.datasets.DATASETS``: adding a data set is one module
here plus one ``DATASETS.register`` line there. Sources hold only the root path and options
because they are pickled into Ray tasks.
"""
