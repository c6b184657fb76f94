// LightNorm RTL sources in compile order, one per line, relative to this file (verilator -F).
// Used by simulation (verif/lightnorm_tb/runner.py), lint and synthesis.
lightnorm_pkg.sv
lightnorm_delay.sv
lightnorm_regfile.sv
lightnorm_round.sv
lightnorm_fp_unpack.sv
lightnorm_fp_widen.sv
lightnorm_fp_add.sv
lightnorm_fp_mul.sv
lightnorm_fp_convert.sv
lightnorm_recip.sv
lightnorm_rsqrt.sv
lightnorm_recip_seq.sv
lightnorm_rsqrt_seq.sv
lightnorm_fp_to_fixed.sv
lightnorm_acc_round.sv
lightnorm_bfp_pack.sv
lightnorm_bfp_unpack.sv
lightnorm_stats.sv
lightnorm_datapath.sv
lightnorm_chan_unit.sv
lightnorm_core.sv
bn_fp32_core.sv
