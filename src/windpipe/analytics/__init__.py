"""Pure wind-domain computations, frames in and frames out, no I/O.

``power_curve``: power curves by the method of IEC 61400-12-1 from SCADA windows (air density,
normalised wind speed, 0.5 m/s bins, the database's completeness). ``flags``: the quality flags of
each window (out of range, flatline, icing suspect, stopped with wind). The API, the ETL and the
KPIs call the same functions; none of them reads a database, the environment or the network.
"""
