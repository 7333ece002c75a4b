"""tlcourse: the helper package of the transfer-learning course.

One small module per idea; the notebooks import them instead of pasting code:

- :mod:`tlcourse.config`     data root, cache, profile (quick/full), chosen models
- :mod:`tlcourse.registry`   every dataset: folder, public source, checksums
- :mod:`tlcourse.images`     image folders decoded once (hymenoptera)
- :mod:`tlcourse.digits`     MNIST, USPS, MNIST-M in one format
- :mod:`tlcourse.backbones`  pretrained CNNs and their surgery (head, freeze, cut)
- :mod:`tlcourse.transforms` preprocessing that matches each backbone
- :mod:`tlcourse.features`   fixed feature extraction, cached
- :mod:`tlcourse.training`   the fit loop, seeds, devices, checkpoints
"""
__version__ = "0.1.0"
