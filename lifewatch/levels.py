"""The four warning levels shared by detectors, alerts and dashboards.

China's emergency-warning scheme (突发事件预警级别): red I (most severe),
orange II, yellow III, blue IV.  The integer value is the Roman numeral, so
sorting ascending puts the most severe first (the queue's order).
"""

from __future__ import annotations

from enum import IntEnum


class Level(IntEnum):
    RED = 1
    ORANGE = 2
    YELLOW = 3
    BLUE = 4

    @property
    def label(self) -> str:
        return self.name.lower()

    @property
    def roman(self) -> str:
        return ("I", "II", "III", "IV")[self.value - 1]

    @property
    def colour(self) -> str:
        """Display colour (Grafana and the crew console)."""
        return {1: "#E02F44", 2: "#FF780A", 3: "#FADE2A", 4: "#3274D9"}[self.value]

    @property
    def zh(self) -> str:
        return {1: "红色预警(I级)", 2: "橙色预警(II级)", 3: "黄色预警(III级)", 4: "蓝色预警(IV级)"}[self.value]

    @classmethod
    def parse(cls, text: str | int | Level) -> Level:
        if isinstance(text, Level):
            return text
        if isinstance(text, int):
            return cls(text)
        t = str(text).strip().upper()
        roman = {"I": 1, "II": 2, "III": 3, "IV": 4}
        if t in roman:
            return cls(roman[t])
        if t.isdigit():
            return cls(int(t))
        return cls[t]

    def more_severe(self, other: Level) -> bool:
        return self.value < other.value
