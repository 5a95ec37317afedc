"""tcpplay's benchmarks: run with `make bench` or `python -m bench`; results are printed, never asserted."""
