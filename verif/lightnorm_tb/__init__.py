# SPDX-License-Identifier: Apache-2.0
"""LightNorm cocotb testbench package: runner (build + run one cocotb test per case) and the
shared verification components."""
