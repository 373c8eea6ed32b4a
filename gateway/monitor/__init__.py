"""The steering monitor: indicator figures per region and period, with disclosure control, and the last
results measurement (laatste resultaatmeting) as signed evidence."""
