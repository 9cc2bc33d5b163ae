"""Writes the two "production" batches `make monitor` replays through the server, from the shipped
Palmer penguins field data (data/raw/penguins-raw.csv, CC0). Standard library only; seeded, so
running it again writes the same files:

    python3 data/production/make_batches.py

- clean.csv: 200 rows drawn with replacement from the raw rows (seed 7), unchanged but for their
  Sample Number (new samples: 1001-1200).
- shifted.csv: 200 rows drawn with replacement (seed 8; Sample Number 2001-2200), then a
  documented shift on four of the model's input columns, as if a new field season measured with
  recalibrated instruments:
    Culmen Length (mm)  + 8.0
    Flipper Length (mm) + 15
    Body Mass (g)       x 1.12 (rounded to a gram)
    Delta 15 N (o/oo)   + 0.6
  The other columns (Island, Culmen Depth, Delta 13 C, the dates and the labels) are unchanged.

Both keep every column of the raw file but `Species`, whose label (as the model knows it, the
short name configs/data.yaml maps it to) is the last column, `species`: `mlops monitor replay
--actual species` leaves it out of the requests and sends it afterwards as feedback, as the truth
arriving later.
"""

import csv
import random
from pathlib import Path

HERE = Path(__file__).resolve().parent
RAW = HERE.parent / "raw" / "penguins-raw.csv"
ROWS = 200
SHIFT = {
    "Culmen Length (mm)": lambda v: f"{float(v) + 8.0:.1f}",
    "Flipper Length (mm)": lambda v: str(int(v) + 15),
    "Body Mass (g)": lambda v: str(round(int(v) * 1.12)),
    "Delta 15 N (o/oo)": lambda v: f"{float(v) + 0.6:.5f}",
}
MISSING = {"", "NA"}
LABELS = {
    "Adelie Penguin (Pygoscelis adeliae)": "Adelie",
    "Gentoo penguin (Pygoscelis papua)": "Gentoo",
    "Chinstrap penguin (Pygoscelis antarctica)": "Chinstrap",
}


def draw(rows, seed, first):
    """ROWS rows drawn with replacement, each a new sample: numbered from `first`, so that the
    batches can be appended to the raw file (as `mlops lifecycle run` does when it retrains)
    without repeating its (studyName, Sample Number, Species) key."""
    rng = random.Random(seed)
    out = []
    for i in range(ROWS):
        row = dict(rng.choice(rows))
        row["species"] = LABELS[row.pop("Species")]
        row["Sample Number"] = str(first + i)
        out.append(row)
    return out


def write(path, header, rows):
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=header, lineterminator="\n")
        w.writeheader()
        w.writerows(rows)


def main():
    with open(RAW, newline="") as f:
        reader = csv.DictReader(f)
        header = [c for c in reader.fieldnames if c != "Species"] + ["species"]
        rows = list(reader)
    write(HERE / "clean.csv", header, draw(rows, 7, 1001))
    shifted = draw(rows, 8, 2001)
    for row in shifted:
        for column, shift in SHIFT.items():
            if row[column] not in MISSING:
                row[column] = shift(row[column])
    write(HERE / "shifted.csv", header, shifted)


if __name__ == "__main__":
    main()
