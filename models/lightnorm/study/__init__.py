# SPDX-License-Identifier: Apache-2.0
"""The training study: does LightNorm train real networks on real data?

- :mod:`.data` — Fashion-MNIST (Debian's IDX files), scikit-learn digits, CIFAR-10 pickles from a
  user-given folder;
- :mod:`.nets` — the networks (CIFAR-style ResNets, MobileNetV2), BatchNorm everywhere;
- :mod:`.train` — one training run (``python -m lightnorm.study.train``), every BatchNorm layer
  converted with :func:`lightnorm.torch.convert_batchnorm`;
- :mod:`.plan` — the accuracy study: variants x networks x seeds, resumable, two processes
  (``python -m lightnorm.study``) -> docs/results/accuracy.{md,json}.
"""
