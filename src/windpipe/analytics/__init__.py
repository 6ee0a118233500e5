"""Pure wind-domain computations: frames in, frames out, no I/O.

``availability`` computes the farm's daily figures (energy, capacity factor, IEC 61400-26-1
time-based and IEC 61400-26-2 production-based availability, lost production by category) from the
target's 10-minute windows and their categories. The ETL reads and stores; the API summarises.
"""
