"""When a week's figures on later students say little.

Read by training's warnings and by the transparency statement's account of accuracy, so both leave out
the same weeks.
"""

from __future__ import annotations

#: Below these, a week's test figures say little: one student moves the AUC by several points.
SMALL_TEST_ROWS, SMALL_TEST_POSITIVES = 50, 10
#: From this share of a week's test rows whose presentation had ended by the cut-off, the week's figures
#: describe an outcome all but known (an 8-week module's week 8 read AUC 0.993), not early warning.
ENDED_SHARE = 0.5
#: From this share, a week's figures are noted as partly end of term: a US university's week 8 was the
#: last of every 8-week session, 15% of its test rows, and its AUC of 0.90 was read as early warning.
PARTLY_ENDED_SHARE = 0.1
