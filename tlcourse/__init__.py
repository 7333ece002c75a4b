"""tlcourse: the helper package of the transfer-learning course.

The lessons write the mechanism of transfer learning out in their own ``core`` cells (plain
PyTorch / torchvision / timm / transformers); this package holds the scaffolding around it, in
three tiers, and the graders of the exercises (``tests/test_import_graph.py`` keeps the rules):

- **core** (``tlcourse.*``): what any lesson may import; never imports a lab.
- **labs** (``tlcourse.labs.*``): one module per lesson, named after its notebook, with that
  lesson's harnesses and experiment tables; a lab imports core and infrastructure, never another lab.
- **infrastructure** (``tlcourse.infra.*``): data on disk, caches, devices, the executor; no
  lesson's code imports it (the set-up cell calls :func:`tlcourse.infra.cloud.setup`, nothing else).
- **exercises** (:mod:`tlcourse.exercises`): one module per lesson grading its "write the code"
  exercises (``exercises.check("NN.k", answer)``); graders import core and infrastructure, never a
  lab, and nothing imports them.

Core: data
- :mod:`tlcourse.config`        data root, cache, profile (quick/full/smoke), chosen models
- :mod:`tlcourse.errors`        the course's exceptions, each with what to do; ``check_range``
- :mod:`tlcourse.images`        image folders decoded once, with the right pixels
- :mod:`tlcourse.digits`        MNIST, USPS, MNIST-M in one format

Core: models and training
- :mod:`tlcourse.backbones`     pretrained CNNs and their surgery (head, freeze, cut)
- :mod:`tlcourse.transforms`    preprocessing that matches each backbone
- :mod:`tlcourse.features`      fixed feature extraction, cached; features at every depth in one pass
- :mod:`tlcourse.probes`        the logistic-regression probe on frozen features
- :mod:`tlcourse.training`      the fit loop, predict, accuracy, history, checkpoints
- :mod:`tlcourse.finetune`      classifier, parameter groups, loaders and the fine-tuning recipe
- :mod:`tlcourse.guide`         the decision guide: which way to transfer
- :mod:`tlcourse.threads`       small computations on one CPU thread

Core: pictures and knobs
- :mod:`tlcourse.plots`         curves (live or after the fact), image grids, maps
- :mod:`tlcourse.gradcam`       where a CNN found its evidence
- :mod:`tlcourse.widgets`       sliders and control panels that re-run a short experiment

Labs (one per lesson)
- :mod:`tlcourse.labs.concepts`            00: the joint objective's λ on toy domains
- :mod:`tlcourse.labs.feature_extraction`  01: heads on cached features, what the cache saves
- :mod:`tlcourse.labs.fine_tuning`         02: the fine-tuning recipe as a script (one CPU or several GPUs)
- :mod:`tlcourse.labs.how_much_to_train`   03: block drift, block sizes, what trains
- :mod:`tlcourse.labs.text_classification` 04: SST-2, the text classifier and its fine-tuning
- :mod:`tlcourse.labs.data_augmentation`   05: augmentation pipelines, MixUp/CutMix runs, the measurement
- :mod:`tlcourse.labs.domain_adaptation`   06: source/target splits, DANN, gradient reversal
- :mod:`tlcourse.labs.choosing_a_strategy` 07: the guide measured, backbones compared, hyperparameter search
- :mod:`tlcourse.labs.your_own_data`       08: your own image folder: inspection, similarity proxy

Infrastructure
- :mod:`tlcourse.infra.registry`     every dataset: folder, public source, checksums
- :mod:`tlcourse.infra.download`     download, unpack, copy and verify the data root
- :mod:`tlcourse.infra.fetch`        the ``tlcourse-fetch`` command
- :mod:`tlcourse.infra.cloud`        what a lesson's platform set-up cell does on Colab, Kaggle, Binder
- :mod:`tlcourse.infra.cache`        the one disk cache behind every cache (keys, versions, locks)
- :mod:`tlcourse.infra.device`       device choice, mixed precision and its loss scaler, seeds
- :mod:`tlcourse.infra.distributed`  the fit loop under torchrun / accelerate
- :mod:`tlcourse.infra.execute`      run lessons headless (``tlcourse-execute``)

Lessons -> modules (what each notebook imports; every lesson's set-up cell also imports
:mod:`tlcourse.infra.cloud`; ``tests/test_package_map.py`` keeps this list and the README's true)

- 00_concepts: backbones, config, errors, exercises, features, guide, images, labs.concepts, plots,
  probes, training, transforms, widgets
- 01_feature_extraction: backbones, config, errors, exercises, features, images,
  labs.feature_extraction, plots, probes, threads, training, transforms, widgets
- 02_fine_tuning: backbones, config, errors, exercises, finetune, images, plots, training,
  transforms, widgets
- 03_how_much_to_train: backbones, config, errors, exercises, features, finetune, gradcam,
  labs.how_much_to_train, plots, training, transforms, widgets
- 04_text_classification: config, errors, exercises, features, labs.text_classification, plots,
  probes, training, widgets
- 05_data_augmentation: backbones, config, errors, exercises, images, labs.data_augmentation, plots,
  training, widgets
- 06_domain_adaptation: config, digits, errors, exercises, labs.domain_adaptation, plots, training,
  widgets
- 07_choosing_a_strategy: backbones, config, errors, exercises, features, guide, images,
  labs.choosing_a_strategy, plots, training, widgets
- 08_your_own_data: backbones, config, errors, exercises, guide, images, labs.your_own_data, plots,
  training, widgets
"""
__version__ = "0.1.0"
