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
- :mod:`tlcourse.images`        image folders decoded once, with the right pixels (lessons 00-02, 04)
- :mod:`tlcourse.digits`        MNIST, USPS, MNIST-M in one format (05, 06)
- :mod:`tlcourse.digit_splits`  source / target splits for domain adaptation (05)
- :mod:`tlcourse.errors`        the course's exceptions, each with what to do

Models and training
- :mod:`tlcourse.backbones`     pretrained CNNs and their surgery (head, freeze, cut) (00-02, 04, 06)
- :mod:`tlcourse.transforms`    preprocessing that matches each backbone
- :mod:`tlcourse.features`      fixed feature extraction, cached (00, 01)
- :mod:`tlcourse.heads`         heads on frozen features, cut at any depth (01)
- :mod:`tlcourse.training`      the fit loop, seeds, devices, mixed precision, checkpoints (02 ...)
- :mod:`tlcourse.finetune`      classifier, parameter groups, loaders for fine-tuning (02, 04, 06)
- :mod:`tlcourse.unfreeze`      fine-tuning runs: all layers, the last blocks, gradually (02)
- :mod:`tlcourse.finetune_job`  lesson 02's fine-tuning as a script (one CPU or several GPUs)
- :mod:`tlcourse.distributed`   the fit loop under torchrun / accelerate
- :mod:`tlcourse.threads`       small computations on one CPU thread
- :mod:`tlcourse.text`          SST-2, the text classifier and its fine-tuning (03)
- :mod:`tlcourse.augment`       augmentation pipelines, MixUp/CutMix runs, the measurement (04)
- :mod:`tlcourse.dann`          domain-adversarial training, gradient reversal (05)
- :mod:`tlcourse.model_choice`  comparing backbones: accuracy, size, speed (06)
- :mod:`tlcourse.search`        hyperparameter search: grid vs random on a holdout (06)
- :mod:`tlcourse.guide`         the decision guide and the joint objective's λ (00)
- :mod:`tlcourse.guide_measured` the decision guide measured on course data (06)

Pictures and knobs
- :mod:`tlcourse.plots`         curves (live or after the fact), image grids, maps
- :mod:`tlcourse.gradcam`       where a CNN found its evidence (02)
- :mod:`tlcourse.widgets`       sliders and control panels that re-run a short experiment
"""
__version__ = "0.1.0"
