"""The Python reference of bench/postgres.sh: one table read whole into a pandas frame with
pandas.read_sql through SQLAlchemy and psycopg 3, as a pandas user reads a PostgreSQL source.

Usage: reference_postgres_pandas.py URL TABLE   (the password in PGPASSWORD)
Prints the frame's shape.
"""
import os
import sys

import pandas as pd
import sqlalchemy

url, table = sys.argv[1], sys.argv[2]
engine = sqlalchemy.create_engine(
    url.replace("postgres://", "postgresql+psycopg://", 1),
    connect_args={"password": os.environ["PGPASSWORD"]},
)
with engine.connect() as conn:
    frame = pd.read_sql(sqlalchemy.text(f'SELECT * FROM "{table}"'), conn)
print(frame.shape)
