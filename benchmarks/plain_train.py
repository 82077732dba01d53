"""What a user would write without a platform: read a CSV, train an MLP with PyTorch, report.

``training_job.py`` runs this as its own process against the same CSV a platform job reads, so
that the whole-job comparison counts the same fixed costs on both sides (starting Python,
importing torch, reading the data). It prints one JSON line: rows, epochs, seconds in the
training loop, and seconds from its own start.

Example:
    .venv/bin/python benchmarks/plain_train.py data.csv --target label --epochs 4
"""

from __future__ import annotations

import time

STARTED = time.perf_counter()

import argparse  # noqa: E402  (the clock starts before any import)
import json  # noqa: E402

import numpy as np  # noqa: E402
import pyarrow.csv as pacsv  # noqa: E402
import torch  # noqa: E402
from torch import nn  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("csv")
    parser.add_argument("--target", default="label")
    parser.add_argument("--hidden", type=int, default=256)
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--validation-fraction", type=float, default=0.1)
    args = parser.parse_args()
    torch.set_num_threads(1)
    torch.manual_seed(0)
    table = pacsv.read_csv(args.csv)
    y_all = table.column(args.target).to_numpy().astype(np.int64)
    features = [n for n in table.column_names if n != args.target]
    x_all = np.column_stack([table.column(n).to_numpy() for n in features]).astype(np.float32)
    order = np.random.default_rng(0).permutation(len(y_all))
    n_val = int(len(y_all) * args.validation_fraction)
    val, train = order[:n_val], order[n_val:]
    mean, std = x_all[train].mean(0), x_all[train].std(0) + 1e-12
    x = torch.from_numpy((x_all[train] - mean) / std)
    y = torch.from_numpy(y_all[train])
    xv, yv = torch.from_numpy((x_all[val] - mean) / std), torch.from_numpy(y_all[val])
    classes = int(y_all.max()) + 1
    model = nn.Sequential(
        nn.Linear(x.shape[1], args.hidden),
        nn.ReLU(),
        nn.Linear(args.hidden, args.hidden),
        nn.ReLU(),
        nn.Linear(args.hidden, classes),
    )
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    loss_fn = nn.CrossEntropyLoss()
    began = time.perf_counter()
    accuracy = 0.0
    for _ in range(args.epochs):
        model.train()
        perm = torch.randperm(len(x))
        for i in range(0, len(x), args.batch_size):
            idx = perm[i : i + args.batch_size]
            optimizer.zero_grad()
            loss_fn(model(x[idx]), y[idx]).backward()
            optimizer.step()
        model.eval()
        with torch.no_grad():
            accuracy = float((model(xv).argmax(1) == yv).float().mean())
    loop_s = time.perf_counter() - began
    total_s = time.perf_counter() - STARTED
    print(
        json.dumps(
            {
                "rows": len(train),
                "epochs": args.epochs,
                "loop_s": loop_s,
                "total_s": total_s,
                "accuracy": accuracy,
            }
        )
    )


if __name__ == "__main__":
    main()
