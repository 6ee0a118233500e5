"""Pure wind-domain computations, frames in and frames out, no I/O.

``power_curve``: power curves by the method of IEC 61400-12-1 from SCADA windows (air density,
normalised wind speed, 0.5 m/s bins, the database's completeness). ``flags``: the quality flags of
each window (out of range, flatline, icing suspect, stopped with wind). ``availability``: the
farm's daily figures (energy, capacity factor, IEC 61400-26-1 time-based and IEC 61400-26-2
production-based availability, lost production by category). The API, the ETL and the KPIs call
the same functions; none of them reads a database, the environment or the network.
"""
