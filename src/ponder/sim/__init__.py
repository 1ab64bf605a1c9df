"""`ponder sim`: a discrete-event simulator of a ponder cluster, calibrated by `ponder profile`."""
