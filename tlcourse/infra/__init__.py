"""The course's infrastructure: what makes lessons run anywhere, and what no lesson calls.

Data and models on disk (``registry``, ``download``, ``fetch``, ``cache``), the platform set-up
cell (``cloud``), where tensors run (``device``, ``distributed``) and the notebook executor
(``execute``). Core modules and labs use it; a lesson's code cells do not (its set-up cell calls
``cloud.setup`` and nothing else here), as ``tests/test_import_graph.py`` checks.
"""
