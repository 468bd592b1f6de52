"""Observability: structured JSON logs with run / task / tenant / request ids, and Prometheus metrics shared by
every process of an installation (pipeline kernels, scheduler, API)."""
