"""Compiler passes: pure functions, graph in and graph out, one file each."""
