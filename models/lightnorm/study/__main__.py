# SPDX-License-Identifier: Apache-2.0
"""``python -m lightnorm.study``: the accuracy study (:mod:`lightnorm.study.plan`)."""

import sys

from lightnorm.study.plan import main

if __name__ == "__main__":
    sys.exit(main())
