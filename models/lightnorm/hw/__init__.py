# SPDX-License-Identifier: Apache-2.0
"""The hardware flow: from the RTL in hdl/ to area, timing, energy and DRAM traffic.

- :mod:`.hdlgen` — hdl/lightnorm_pkg.sv generated from the format table
  (``python -m lightnorm.hw.hdlgen``; a test fails on drift);
- :mod:`.synth` — Yosys 0.23 + OSU 0.18 µm cells + OpenSTA for one design
  (``python -m lightnorm.hw.synth``, ``make synth`` / ``make synth-ci``); the Yosys and OpenSTA
  scripts of every run are written next to its results under runs/synth/<design>/;
- :mod:`.report` — both cores, the block sweep and the DRAM model -> docs/results/hw_synth.md
  (``python -m lightnorm.hw.report``, ``make report``);
- :mod:`.traffic` — BN DRAM traffic and energy per training iteration of whole networks
  (``python -m lightnorm.hw.traffic``).

It lives in the Python package (not in a top-level ``syn/``) because every step reads the
package's single sources of truth: the format table, the named configurations and the
DRAM/energy constants. hdl/syn/README.md is the hardware engineer's entry point to it.
"""
