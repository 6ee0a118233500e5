"""The source side: the SCADA table, the synthetic turbine, and seeding."""
