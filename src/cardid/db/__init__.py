"""The reference gallery: its files and layout (:mod:`.store`), writing it (:mod:`.build`), the
features stored for verification (:mod:`.features`, :mod:`.verify`) and same-art relations
(:mod:`.art`). Decisions are :mod:`cardid.decision`'s; what is fitted, :mod:`cardid.fit`'s."""
