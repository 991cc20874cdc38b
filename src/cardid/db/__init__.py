"""The reference DB (:mod:`.store`), geometric verification (:mod:`.verify`), shortlist → verify →
fuse (:mod:`.match`), decisions and their calibration (:mod:`.decide`, :mod:`.calibrate`)."""
