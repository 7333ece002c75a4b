"""Graded exercises: every "write the code" exercise checks the learner's own code, no server needed.

A lesson's exercise cell ends with ``exercises.check("NN.k", answer)``: ✔ and what was verified,
✘ and the first concrete difference, or ○ while the stub is untouched. How grading works:
:mod:`tlcourse.exercises.grading`; the graders, one module per lesson named after its notebook:

- :mod:`tlcourse.exercises.concepts`            00.5 freeze all but the last block
- :mod:`tlcourse.exercises.feature_extraction`  01.5 an MLP head with early stopping
- :mod:`tlcourse.exercises.fine_tuning`         02.3 resume training from a checkpoint
- :mod:`tlcourse.exercises.how_much_to_train`   03.3 an optimizer for the last block only
- :mod:`tlcourse.exercises.text_classification` 04.5 the [CLS] vector, 04.6 the collate function
- :mod:`tlcourse.exercises.data_augmentation`   05.5 MixUp by hand
- :mod:`tlcourse.exercises.domain_adaptation`   06.5 AdaBN
- :mod:`tlcourse.exercises.choosing_a_strategy` 07.5 a random search over two knobs
- :mod:`tlcourse.exercises.your_own_data`       08.3 classify a folder in batches

Exercise modules import the core and the infrastructure, never a lab, and no other module imports
them (``tests/test_import_graph.py``).

Example:
    >>> from tlcourse import exercises
    >>> sorted(exercises.REGISTRY)[:2]
    ['00.5', '01.5']
"""
from . import (  # noqa: F401  (importing a module registers its graders)
    choosing_a_strategy,
    concepts,
    data_augmentation,
    domain_adaptation,
    feature_extraction,
    fine_tuning,
    how_much_to_train,
    text_classification,
    your_own_data,
)
from .grading import REGISTRY, Verdict, Wrong, check, grade

__all__ = ["REGISTRY", "Verdict", "Wrong", "check", "grade"]
