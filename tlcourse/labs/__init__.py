"""One lab per lesson: the harnesses, experiment tables and widgets' work of that lesson alone.

A lesson imports its own lab as ``from tlcourse.labs import <name> as lab``; labs import the core
modules (``tlcourse.*``) and the infrastructure (``tlcourse.infra``), never each other
(``tests/test_import_graph.py`` keeps that true).
"""
