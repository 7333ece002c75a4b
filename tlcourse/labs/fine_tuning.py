"""Lesson 02's fine-tuning as a script, for one CPU, one GPU or several GPUs.

    python -m tlcourse.labs.fine_tuning --epochs 5                         # one process
    torchrun --nproc_per_node=4 -m tlcourse.labs.fine_tuning --epochs 25   # 4 GPUs (DDP)
    accelerate launch --num_processes 2 -m tlcourse.labs.fine_tuning       # the same via accelerate

Each process trains on its shard of the images; gradients are averaged by
DistributedDataParallel, so all processes end with the same weights.
"""
from __future__ import annotations

import argparse


from .. import backbones, finetune, images, training, transforms
from ..infra import distributed
from ..infra.device import seed_everything


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--backbone", default=None, help="registry name (default: TLCOURSE_BACKBONE)")
    p.add_argument("--epochs", type=int, default=25)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--size", type=int, default=224, help="input image size")
    p.add_argument("--trainable-blocks", type=int, default=None, help="default: all")
    p.add_argument("--batch-size", type=int, default=32, help="per process")
    p.add_argument("--checkpoint-dir", default=None)
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> float:
    args = parse(argv)
    device = distributed.join_process_group()
    seed_everything(0)  # same initial head on every process
    spec = backbones.get_spec(args.backbone)
    model = finetune.make_classifier(spec, 2, trainable_blocks=args.trainable_blocks)
    model = distributed.wrap(model, device)
    train = images.hymenoptera("train", transforms.train_transform(spec, args.size))
    val = images.hymenoptera("val", transforms.eval_transform(spec, args.size))
    opt, sched = finetune.sgd_step_lr([p for p in model.parameters() if p.requires_grad], args.lr)
    history = training.fit(
        model, distributed.loader(train, args.batch_size), distributed.loader(val, 64, shuffle=False),
        opt, args.epochs, scheduler=sched, device=device,
        checkpoint_dir=args.checkpoint_dir, progress=distributed.is_main())
    if distributed.is_main():
        print(f"{distributed.world_size()} process(es), backend {distributed.backend()}, device {device}")
        print(f"best val accuracy {history.best_val_acc:.3f} at epoch {history.best_epoch + 1}")
    distributed.cleanup()
    return history.best_val_acc


if __name__ == "__main__":
    main()
