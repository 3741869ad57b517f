"""A discriminator-stall detector for GAN training.

With the paper's loss (a tanh score regressed by L1 to +1 / -1) the discriminator can settle
where every pair gets the same score: its loss is then exactly 1.000 whatever that constant
is, it no longer learns, and the generator trains on the pixel loss alone (one template per
class). The detector watches the stats lines the loop logs and warns when the discriminator
loss has been flat for `window` lines in a row while real and fake pairs were scored alike.
The engine logs each warning as "warning: discriminator stalled ..." (read back by
s2ilib.runs.stall_warnings).
"""

from __future__ import annotations

from collections import deque


class StallDetector:
    """Feed it each logged stats row (`observe`); it returns a warning when D stalls.

    window: consecutive stats lines considered (0 turns the detector off);
    tolerance: largest max - min of d_loss over the window that counts as flat;
    gap: largest mean |real_score - fake_score| over the window that counts as "alike".
    It warns once per stall and again only after the discriminator has recovered.
    """

    def __init__(self, window: int = 5, tolerance: float = 0.005, gap: float = 0.05):
        self.window, self.tolerance, self.gap = window, tolerance, gap
        self.rows = deque(maxlen=max(window, 1))
        self.stalled = False
        self.stalls = 0  # stall episodes seen so far

    def observe(self, row: dict) -> str | None:
        """A warning message when this row completes a stalled window, else None."""
        if not self.window or "d_loss" not in row:
            return None
        self.rows.append((row["d_loss"], abs(row["real_score"] - row["fake_score"])))
        stalled = len(self.rows) == self.window and self._flat()
        warning = None
        if stalled and not self.stalled:
            self.stalls += 1
            losses = [loss for loss, _ in self.rows]
            warning = (
                f"discriminator stalled at step {row['step']}: d_loss {min(losses):.4f}-"
                f"{max(losses):.4f} over the last {self.window} stats lines with real and fake "
                "pairs scored alike, so the generator learns from the pixel loss alone; try "
                "loss=hinge or non_saturating, spectral_norm=true, or a lower lr_discriminator"
            )
        self.stalled = stalled
        return warning

    def _flat(self) -> bool:
        losses = [loss for loss, _ in self.rows]
        mean_gap = sum(gap for _, gap in self.rows) / len(self.rows)
        return max(losses) - min(losses) <= self.tolerance and mean_gap <= self.gap
