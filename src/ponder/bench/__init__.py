"""`ponder bench`: a serving benchmark (TTFT, TPOT, ITL, goodput, reasoning cost) over HTTP."""
