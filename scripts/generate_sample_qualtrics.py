"""Writes cx_pipeline/sample_data/surveys/nordlys_shop_qualtrics_2025-04.csv: a synthetic Qualtrics-style
export for the demo (fictional brand, fake e-mails on example.com, documentation-range IPs 192.0.2.x).

Delivery and customer-service satisfaction drive the NPS answer (plus noise), so the key-driver
analysis has something real to find. Deterministic: re-running gives the same file.
"""

from __future__ import annotations

import csv
import json
import random
from pathlib import Path

OUT = (
    Path(__file__).resolve().parents[1]
    / "cx_pipeline"
    / "sample_data"
    / "surveys"
    / "nordlys_shop_qualtrics_2025-04.csv"
)
CODES = [
    "StartDate",
    "EndDate",
    "Status",
    "IPAddress",
    "Progress",
    "Duration (in seconds)",
    "Finished",
    "RecordedDate",
    "ResponseId",
    "RecipientEmail",
    "ExternalReference",
    "DistributionChannel",
    "UserLanguage",
    "Q1_NPS_GROUP",
    "Q1",
    "Q2",
    "Q3",
    "Q6",
]
LABELS = [
    "Start Date",
    "End Date",
    "Response Type",
    "IP Address",
    "Progress",
    "Duration (in seconds)",
    "Finished",
    "Recorded Date",
    "Response ID",
    "Recipient Email",
    "External Data Reference",
    "Distribution Channel",
    "User Language",
    "Hvor sandsynligt er det, at du vil anbefale Nordlys Shop til en ven eller kollega? - Group",
    "Hvor sandsynligt er det, at du vil anbefale Nordlys Shop til en ven eller kollega?",
    "Hvor tilfreds er du med leveringen af din ordre?",
    "Hvor tilfreds er du med kundeservice hos Nordlys Shop?",
    "Har du andre kommentarer? / Any other comments?",
]
IMPORT = [
    {"ImportId": "startDate", "timeZone": "Europe/Copenhagen"},
    {"ImportId": "endDate", "timeZone": "Europe/Copenhagen"},
    {"ImportId": "status"},
    {"ImportId": "ipAddress"},
    {"ImportId": "progress"},
    {"ImportId": "duration"},
    {"ImportId": "finished"},
    {"ImportId": "recordedDate", "timeZone": "Europe/Copenhagen"},
    {"ImportId": "_recordId"},
    {"ImportId": "recipientEmail"},
    {"ImportId": "externalDataReference"},
    {"ImportId": "distributionChannel"},
    {"ImportId": "userLanguage"},
    {"ImportId": "QID1_NPS_GROUP"},
    {"ImportId": "QID1"},
    {"ImportId": "QID2"},
    {"ImportId": "QID3"},
    {"ImportId": "QID6_TEXT"},
]
COMMENTS = {
    "low_delivery": [
        "Pakken kom en uge for sent.",
        "Levering tog alt for lang tid.",
        "The parcel arrived late and damaged.",
    ],
    "low_service": [
        "Ingen svar fra kundeservice.",
        "Kundeservice var uvenlig i telefonen.",
        "Nobody answered my emails.",
    ],
    "high": ["Hurtig levering og venlig service!", "Alt fungerede perfekt, tak.", "Great service, will buy again."],
    "none": [""],
}


def main() -> None:
    rng = random.Random(20250401)
    rows = []
    for i in range(1, 61):
        delivery = rng.choice([1, 2, 3, 4, 4, 5, 5, 5])
        service = rng.choice([1, 2, 3, 3, 4, 4, 5, 5])
        nps = round(min(10, max(0, 0.25 + 1.3 * delivery + 0.7 * service + rng.gauss(0, 1.2))))
        group = "Promoter" if nps >= 9 else ("Passive" if nps >= 7 else "Detractor")
        if delivery <= 2:
            comment = rng.choice(COMMENTS["low_delivery"])
        elif service <= 2:
            comment = rng.choice(COMMENTS["low_service"])
        elif nps >= 9:
            comment = rng.choice(COMMENTS["high"])
        else:
            comment = ""
        day = 1 + (i - 1) // 2
        stamp = f"2025-04-{day:02d} {8 + i % 10:02d}:{i % 60:02d}:05"
        rows.append(
            [
                stamp,
                stamp,
                "IP Address",
                f"192.0.2.{100 + i}",
                "100",
                str(30 + i),
                "True",
                stamp,
                f"R_NordlysApr{i:04d}x",
                f"kunde{200 + i}@example.com",
                f"NS-{2000 + i}",
                "email",
                rng.choice(["DA", "NO", "SV", "EN"]),
                group,
                str(nps),
                str(delivery),
                str(service),
                comment,
            ]
        )
    with OUT.open("w", encoding="utf-8", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(CODES)
        w.writerow(LABELS)
        w.writerow([json.dumps(x) for x in IMPORT])
        w.writerows(rows)
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
