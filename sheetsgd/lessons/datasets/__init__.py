"""Data sets shipped inside the package, so a lesson never needs the network.

titanic.csv: the Kaggle "Titanic: Machine Learning from Disaster" training set (891 passengers,
12 columns), exactly the file ``doc/data/titanic.csv`` of the pandas repository (BSD-3-Clause),
md5 d2750c6fc7058243c075b04db0aaa468.

penguins.csv: the Palmer penguins (344 rows, 8 columns), exactly ``palmerpenguins/data/penguins.csv`` of the
palmerpenguins 0.1.6 package (code MIT, data CC0), md5 a06a0210251465a86fb970018292304d.
See ATTRIBUTION.md beside them.
"""
from __future__ import annotations

from pathlib import Path

DATASETS_DIR = Path(__file__).resolve().parent
TITANIC_CSV = DATASETS_DIR / "titanic.csv"
TITANIC_MD5 = "d2750c6fc7058243c075b04db0aaa468"
TITANIC_ATTRIBUTION = ("Titanic passenger data: Kaggle's “Titanic: Machine Learning from Disaster” train.csv, "
                       "as shipped in the pandas repository (doc/data/titanic.csv, BSD-3-Clause).")
PENGUINS_CSV = DATASETS_DIR / "penguins.csv"
PENGUINS_MD5 = "a06a0210251465a86fb970018292304d"
PENGUINS_ATTRIBUTION = ("Palmer penguins data by Allison Horst, Alison Hill and Kristen Gorman (Palmer Station LTER), "
                        "CC0, as shipped in the palmerpenguins 0.1.6 package (data/penguins.csv).")
