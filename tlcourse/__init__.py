"""tlcourse: the helper package of the transfer-learning course.

The lessons write the mechanism of transfer learning out in their own ``core`` cells (plain
PyTorch / torchvision / timm / transformers); this package holds the scaffolding around it:
caches, experiment harnesses, plots, widgets. One small module per idea.

Set-up and data
- :mod:`tlcourse.config`        data root, cache, profile (quick/full/smoke), chosen models
- :mod:`tlcourse.registry`      every dataset: folder, public source, checksums
- :mod:`tlcourse.download`      download, unpack, copy and verify the data root
- :mod:`tlcourse.fetch`         the ``tlcourse-fetch`` command
- :mod:`tlcourse.cloud`         what a lesson's platform set-up cell does on Colab, Kaggle, Binder
- :mod:`tlcourse.cache`         the one disk cache behind every cache (keys, versions, locks)
- :mod:`tlcourse.images`        image folders decoded once, with the right pixels (lessons 00-02, 05)
- :mod:`tlcourse.digits`        MNIST, USPS, MNIST-M in one format (05, 06)
- :mod:`tlcourse.digit_splits`  source / target splits for domain adaptation (05)
- :mod:`tlcourse.errors`        the course's exceptions, each with what to do

Models and training
- :mod:`tlcourse.backbones`     pretrained CNNs and their surgery (head, freeze, cut) (00-02, 04, 06)
- :mod:`tlcourse.transforms`    preprocessing that matches each backbone
- :mod:`tlcourse.features`      fixed feature extraction, cached (00, 01)
- :mod:`tlcourse.heads`         heads on frozen features, cut at any depth (01)
- :mod:`tlcourse.device`        device choice, mixed precision and its loss scaler, seeds (every training)
- :mod:`tlcourse.training`      the fit loop, history, checkpoints (02 ...)
- :mod:`tlcourse.finetune`      classifier, parameter groups, loaders for fine-tuning (02, 04, 06)
- :mod:`tlcourse.unfreeze`      fine-tuning runs: all layers, the last blocks, gradually (03)
- :mod:`tlcourse.finetune_job`  lesson 02's fine-tuning as a script (one CPU or several GPUs)
- :mod:`tlcourse.distributed`   the fit loop under torchrun / accelerate
- :mod:`tlcourse.threads`       small computations on one CPU thread
- :mod:`tlcourse.text`          SST-2, the text classifier and its fine-tuning (03)
- :mod:`tlcourse.augment`       augmentation pipelines, MixUp/CutMix runs, the measurement (04)
- :mod:`tlcourse.dann`          domain-adversarial training, gradient reversal (05)
- :mod:`tlcourse.model_choice`  comparing backbones: accuracy, size, speed (06)
- :mod:`tlcourse.hparam_search` hyperparameter search: grid vs random on a holdout (06)
- :mod:`tlcourse.guide`         the decision guide and the joint objective's λ (00)
- :mod:`tlcourse.guide_measured` the decision guide measured on course data (06)
- :mod:`tlcourse.own_images`    your own image folder: inspection, similarity proxy, CI folders (07)

Pictures and knobs
- :mod:`tlcourse.plots`         curves (live or after the fact), image grids, maps
- :mod:`tlcourse.gradcam`       where a CNN found its evidence (03)
- :mod:`tlcourse.widgets`       sliders and control panels that re-run a short experiment

Lessons -> modules (what each notebook imports; every lesson's set-up cell also imports
:mod:`tlcourse.cloud`; ``tests/test_package_map.py`` keeps this list and the README's true)

- 00_concepts: backbones, config, features, guide, heads, images, plots, training, transforms,
  widgets
- 01_feature_extraction: backbones, config, features, heads, images, plots, threads, training,
  transforms, widgets
- 02_fine_tuning: backbones, config, images, plots, training, transforms, unfreeze, widgets
- 03_how_much_to_train: backbones, config, features, finetune, gradcam, plots, training, transforms,
  unfreeze, widgets
- 04_text_classification: config, features, heads, plots, registry, text, training, widgets
- 05_data_augmentation: augment, backbones, config, images, plots, training, transforms, widgets
- 06_domain_adaptation: config, dann, digit_splits, digits, plots, training, widgets
- 07_choosing_a_strategy: backbones, config, guide, guide_measured, heads, hparam_search, images,
  model_choice, plots, training, widgets
- 08_your_own_data: backbones, config, guide, images, own_images, plots, training, widgets
"""
__version__ = "0.1.0"
