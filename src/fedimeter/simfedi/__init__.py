"""A simulated fediverse: real HTTP servers on loopback that behave like Mastodon and its kin.

fedimeter's tests, ``fedimeter demo`` and the benchmarks never reach real servers. They build a
``SimFediverse``, add instances and accounts, and point the collector at the instances'
addresses. Each instance is a real HTTP/1.1 server (asyncio + h11) on ``127.0.0.1`` and an
ephemeral port, serving bodies shaped like ``shared/mastodon-api/examples``; it keeps a log of
every request so a test can assert what a collection round cost.

Building a world
----------------
::

    from fedimeter.simfedi import Fault, RateLimit, SimFediverse

    world = SimFediverse(seed=1)              # one seeded random.Random: ids, ages, fault rolls
    alpha = world.add_instance(
        "alpha",                              # a name for tests and logs
        software="mastodon", version="4.3.2", # routes and fields follow the version
        rate_limit=RateLimit(limit=5, window=2.0),  # default 300 per 300 s; None: unlimited
        latency=(0.0, 0.01),                  # seconds, uniform per request
    )
    alice = alpha.add_account(
        "alice", followers=120, following=30, statuses=400,
        followers_per_day=5.0, statuses_per_day=3.0, last_status_days_ago=0,
    )

``add_instance`` options (all keyword-only; every one is also a plain attribute a test may
change while the world serves, except ``software``, ``account_domain`` and ``host``):

* ``software``: ``mastodon``, ``pleroma``, ``akkoma``, ``pixelfed``, ``gotosocial``,
  ``misskey``; other names behave like a Mastodon-compatible server without the batch call.
* ``version``: compared by its leading numbers (``4.3.0+glitch`` is 4.3.0).
* ``rate_limit``: ``RateLimit(limit, window, retry_after=False, send_headers=True)`` or None.
* ``paging_limit``: the second throttle, for paging requests (default
  ``MASTODON_PAGING_LIMIT``, 300 per 900 s); a ``RateLimit`` or None. ``rate_limit=None``
  leaves it in place: pass ``paging_limit=None`` too for no limit at all (see Rate limits).
* ``trends`` (default True): whether ``GET /api/v1/trends/tags`` lists the trending tags
  (``inst.trends_enabled``); False answers ``[]``, as when the admin turns trends off.
* ``latency``: ``(min, max)`` seconds added to every answer.
* ``limited_federation``: every ``/api/*`` answers 401
  ``{"error":"This API requires an authenticated user"}``.
* ``account_domain="alias"``: accounts live under a second domain. The instance binds a
  second port that serves only ``/.well-known/webfinger`` (an HTML 404 page for anything
  else, like a plain website); with ``alias_redirect=True`` it 301-redirects WebFinger to the
  web host instead, as many real setups do. ``inst.domain`` is then the alias authority and
  ``inst.address`` the web host: ``alice@example.com`` served by ``social.example.com``.
* ``disabled_endpoints``: any of ``webfinger``, ``nodeinfo`` (discovery and document),
  ``lookup``, ``account``, ``batch``, ``instance``, ``instance_v2``, ``activity``, ``peers``.
  They answer 404; ``activity`` and ``peers`` with an empty body, as Mastodon does.
* ``gone_status``: 404 (default) or 410 for deleted accounts.
* ``users_total`` / ``active_month``: override the user figures derived from the accounts.
* ``open_registrations``, ``title``, ``peers`` (a count or a list of domains), ``host`` (any
  127.0.0.0/8 address; the default ``127.0.0.1`` works everywhere).
* ``max_characters`` (default 500): the longest status ``POST /api/v1/statuses`` accepts
  (see Posting). Shown as ``configuration.statuses.max_characters`` in ``/api/v1/instance``
  and ``/api/v2/instance``, and as ``max_toot_chars`` in the ``/api/v1/instance`` of
  Pleroma, Akkoma and GoToSocial.

Accounts: ``acc.id`` is a string in the software's style (Mastodon snowflakes, Pleroma flake
ids, Misskey aids, GoToSocial ULIDs), or the ``account_id`` given. ``followers``,
``following`` and ``statuses`` read and set the current value; ``*_per_day`` rates change it
with simulated time. ``acc.suspended = True`` serves 200 with ``suspended: true`` and zeroed
counts; ``acc.moved_to = other`` adds ``moved`` (the other account's JSON, with its own id);
``acc.deleted = True`` answers 404 ``{"error":"Record not found"}`` (410 ``{"error":"Gone"}``
when ``gone_status=410``) and drops it from batch answers. ``hide_collections=True`` shows
``hide_collections: true`` on Mastodon and zeroes the follow counts on Pleroma/Akkoma.

Timelines: an account's statuses, served by ``GET /api/v1/accounts/:id/statuses``. They are
the statuses posted through the API and those a test adds, in one store::

    first = alice.add_status("Hello", created_at=world.now - timedelta(days=3), favourites=4)
    alice.add_status("Thread, 2/2", reply_to=first, replies=1)  # default created_at: now
    alice.add_status(boost_of=bobs_post, visibility="unlisted")  # a boost
    history = alice.seed_statuses(200, days=60, reply_share=0.2, boost_share=0.1)

* ``add_status(text=None, *, created_at=None, reply_to=None, boost_of=None, favourites=0,
  reblogs=0, replies=0, visibility="public", spoiler_text="", sensitive=False,
  language="en")`` returns the ``SimStatus``. ``created_at`` (default now) may lie in the
  past, not in the future nor before the account's creation; the id embeds it, so ids sort
  like ``created_at`` (each id has a millisecond of its own: equal moments take the next
  free ones, in the order added). ``reply_to`` and ``boost_of`` are earlier statuses of the
  same instance (boosting a boost boosts the original; another account's private or direct
  status cannot be boosted). The status counts toward ``statuses`` and moves
  ``last_status_at`` to its moment if that is later.
* ``favourites``, ``reblogs``, ``replies`` are interactions from outside the simulation,
  kept in ``status.engagement`` (an ``Engagement``; change them there at any time). Served
  counts: ``favourites_count`` = favourites; ``reblogs_count`` and ``replies_count`` add the
  boosts and replies stored on the instance (posted through the API or added).
* ``seed_statuses(count, *, days=30.0, reply_share=0.0, boost_share=0.0, favourites=(0,
  10), reblogs=(0, 3), replies=(0, 2), visibility="public")`` draws a history from the
  world's seeded RNG, oldest first: moments uniform over the last ``days`` (not before the
  account's creation), a share of self-replies (threads) and of boosts of other accounts'
  earlier public posts, engagement uniform in the inclusive ranges (boosts have none).
  Equal seeds over equal worlds give equal histories.

Serving
-------
::

    with world.run_in_thread() as w:     # sync tests, CLI tests: an event loop in a thread
        alpha.address                    # InstanceAddress(host="127.0.0.1", scheme="http", port=N)
        alpha.domain                     # "127.0.0.1:N" (the account domain)
        alice.acct                       # "alice@127.0.0.1:N"
        alice.profile_url                # "http://127.0.0.1:N/@alice"

    async with world.serving():          # async tests: on the running loop
        ...

Instances added while the world serves start listening at once. Addresses exist from the
first serve on and keep their last value after it ends.

Simulated time
--------------
``world.now`` starts at ``DEFAULT_START`` (Monday 2026-01-05 12:00 UTC) or ``start=``.
``world.advance(days=1.0)`` (also ``hours=``, ``minutes=``) moves it; counts are
``base + floor(rate * days)``, and ``last_status_at`` follows the posts made. Served as a date
(``2026-01-05``) by Mastodon 3.1+, as a timestamp (``2026-01-05T12:00:00.000Z``) by older
Mastodon and by other software. Rate-limit windows use real time instead (below).

Endpoints
---------
* ``/.well-known/webfinger?resource=acct:user@domain``: JRD (``application/jrd+json``); the
  domain may be the account domain or the web host; ``http://host/@user`` and
  ``http://host/users/user`` resources work too. Unknown user 404, malformed resource 400,
  both with an empty body (as Mastodon's ``head``).
* ``/.well-known/nodeinfo`` -> ``/nodeinfo/2.0`` (Mastodon, GoToSocial), ``/nodeinfo/2.1.json``
  and ``/nodeinfo/2.0.json`` (Pleroma, Akkoma), ``/api/nodeinfo/2.0.json`` (Pixelfed),
  ``/nodeinfo/2.1`` and ``/nodeinfo/2.0`` (Misskey, whose ``activeMonth``/``activeHalfyear``
  are null). The documents carry Content-Type ``application/json; profile="..."``. NodeInfo
  never counts toward the rate limit, even under ``/api/`` on Pixelfed.
* ``GET /api/v1/accounts/lookup?acct=user`` (Mastodon 3.4+): a bare username or
  ``user@<account domain>``; any other domain, the web host's included, is 404 like
  Mastodon's local lookup.
* ``GET /api/v1/accounts/:id``.
* ``GET /api/v1/accounts?id[]=1&id[]=2`` (Mastodon 4.3+; elsewhere 404
  ``{"error":"Record not found"}``, the answer of a route that does not exist). As Rails does:
  only ``id[]`` counts, a scalar ``id=`` is ignored; duplicates are dropped; more than 40 ids
  is 422 ``{"error":"Mastodon::ValidationError"}``; no ids is 200 ``[]``; unknown and deleted
  ids are left out; suspended accounts are included; the order is creation order (the
  database's), not the order asked.
* ``GET /api/v1/instance`` (``Deprecation`` header from Mastodon 4.0; Pleroma-style
  ``version: "2.7.2 (compatible; Pleroma 2.6.0)"`` and a URL ``uri``), ``GET /api/v2/instance``
  (Mastodon 4.0+, GoToSocial), ``GET /api/v1/instance/activity`` (Mastodon: 12 weekly buckets,
  newest first, strings, the first one the incomplete current week of simulated time),
  ``GET /api/v1/instance/peers``.
* ``POST /api/v1/statuses`` and ``GET /api/v1/statuses/:id``: see Posting.
* ``GET /api/v1/accounts/:id/statuses`` (every Mastodon-compatible server; Pixelfed and
  GoToSocial want a token): the account's statuses, newest first, as Mastodon's
  ``AccountStatusesFilter`` and ``Paginable`` pick them. Without a token (or another
  account's) public and unlisted only; the author's own token sees all. ``limit`` (default
  20, ``|to_i|`` capped at 40); ``max_id`` (older than), ``since_id`` (newer than, newest
  first), ``min_id`` (the ones right after it, still served newest first; ``since_id`` is
  then ignored); ``exclude_replies`` drops replies except to oneself (threads stay);
  ``exclude_reblogs`` drops boosts; ``pinned``, ``only_media`` and ``tagged`` answer ``[]``
  (no pins, media or hashtags in simulated statuses). Booleans as Rails casts them (``0``,
  ``f``, ``false``, ``off`` and their upper case are false, anything else true). Unknown id:
  404 ``{"error":"Record not found"}``; deleted: as ``GET /api/v1/accounts/:id``;
  suspended: 200 ``[]``. ``Link: <URL?limit=5&max_id=OLDEST>; rel="next", <URL?limit=5&
  min_id=NEWEST>; rel="prev"`` (Rails' sorted query, repeating ``limit`` and the filter
  parameters given; ``next`` only when the page is full; no header for an empty page).
  Status objects carry ``id`` (string), ``created_at``, ``in_reply_to_id``,
  ``in_reply_to_account_id``, ``reblog`` (the boosted status, or null), ``visibility``,
  ``replies_count``, ``reblogs_count``, ``favourites_count``, ``content``, ``url``, ``uri``
  (a boost's both ``.../statuses/ID/activity``), ``account`` and the rest of
  REST::StatusSerializer's fields.
* ``GET /api/v1/tags/:name`` (Mastodon 4.0+) and ``GET /api/v1/trends/tags`` (Mastodon 3.5+;
  ``/api/v1/trends`` from 3.0, with a ``Deprecation`` header from 4.0): see Hashtags. Older
  versions and other software answer 404 ``{"error":"Record not found"}``.
* Pixelfed and GoToSocial answer 401 on the account endpoints without a token; Misskey has
  no ``/api/v1`` at all. A valid token (see Posting) gets past both that and
  ``limited_federation``. Anything else is 404 ``{"error":"Record not found"}``.

Posting
-------
Every Mastodon-compatible instance (all software but Misskey, whose ``/api/v1`` is 404) takes
posts from the holder of an access token::

    token = alpha.add_token(alice)      # alice posts with it; add_token(alice, "fixed") also
    with world.run_in_thread(), httpx.Client() as client:
        url = f"{alpha.base_url}/api/v1/statuses"
        auth = {"Authorization": f"Bearer {token}"}
        first = client.post(url, headers=auth, json={"status": "Report, part 1/2"}).json()
        client.post(
            url,
            headers={**auth, "Idempotency-Key": "report-2"},   # a retry posts nothing new
            data={"status": "Part 2/2", "in_reply_to_id": first["id"]},   # a form body
        )
    [(s.text, s.in_reply_to_id) for s in alpha.statuses]
    # [("Report, part 1/2", None), ("Part 2/2", first["id"])]

* Bodies: JSON, ``application/x-www-form-urlencoded`` or ``multipart/form-data``; query
  parameters count too, the body's win (Rails' ``params``); JSON that does not parse is 400.
  Parameters: ``status``, ``visibility`` (``public`` by default, ``unlisted``, ``private``,
  ``direct``), ``in_reply_to_id``, ``spoiler_text``, ``sensitive``, ``language`` (default
  ``en``).
* Checks in Mastodon's order: no valid token (none, unknown, revoked, account deleted) is 401
  ``{"error":"The access token is invalid"}`` (403 when the author is suspended); an
  ``in_reply_to_id`` that is not a status of this instance the author may see is 404
  ``{"error":"Record not found"}``; an ``Idempotency-Key`` the same account used less than an
  hour of simulated time ago answers 200 with that first status and creates nothing; then 422
  ``{"error":"Validation failed: ..."}`` for any other visibility, a blank status (a lone
  ``spoiler_text`` becomes the text, as in Mastodon) or one longer than ``max_characters``
  (``Text character limit of 500 exceeded``).
* Length is Mastodon's StatusLengthValidator's: content warning plus text, every
  ``http(s)://`` URL counting 23 and ``@user@domain`` counting as ``@user``. Characters are
  grapheme clusters as Ruby counts them (an emoji with a skin tone is one), not code points.
  Mention domains end before a port, as in Mastodon: ``@a@127.0.0.1:8080`` counts as ``@a:8080``.
* Success is 200 with a Status entity like Mastodon's: an id in the software's style (each
  later post has a greater id), ``created_at`` the simulated time, ``content`` the escaped
  text in ``<p>`` paragraphs with ``<br />`` for single newlines (links and mentions stay plain
  text), ``url`` and ``uri`` in the software's style, ``account`` with the new count. The
  author's ``statuses`` grows by one and ``last_status_at`` becomes now.
* ``GET /api/v1/statuses/:id`` answers the same entity; private and direct statuses only with
  the author's token, otherwise 404 like an unknown id; Pixelfed and GoToSocial want a token.
* ``alpha.statuses`` lists every ``SimStatus`` in the order stored (posted, oldest first, and
  added by tests: see Timelines) (``id``, ``account``, ``token``, ``text``, ``visibility``,
  ``in_reply_to_id``, ``spoiler_text``, ``sensitive``, ``language``, ``idempotency_key``,
  ``created_at``, ``url``, ``uri``, ``reblog``, ``engagement``);
  ``alpha.find_status(id)`` finds one; ``alpha.revoke_token(token)`` makes a token 401.
* Posts are ``/api/*`` requests like any other: they count toward the rate limit (429 posts
  nothing), the log records them with method ``POST`` and endpoint ``post``, and faults apply
  (``endpoint="post"``, or ``account_ids`` holding the author's id). A ``status``, ``html``
  or ``redirect`` fault (and ``timeout``, ``reset``) answers instead of the server, so nothing
  is stored; ``malformed``, ``wrong_type``, ``drip`` and ``truncated`` spoil the answer to a
  post that was stored: the lost answer that ``Idempotency-Key`` exists for.
* A request body over ``MAX_REQUEST_BODY`` (1 MiB) gets nginx's HTML 413 page before the
  application or the rate limit see it; the log records it (status 413, not counted).

Hashtags
--------
Each instance keeps hashtags with a usage per UTC day that tests set; posts do not feed it::

    alpha.tag_uses("Caturday", day=date(2026, 1, 4), uses=12, accounts=5)
    alpha.tag_uses("caturday", uses=3, accounts=2)        # today (simulated), may change later
    alpha.add_tag_uses("Caturday", uses=1, accounts=1)    # today grows: a day in progress
    alpha.tag_history("fediverse", {date(2026, 1, 3): (40, 22), date(2026, 1, 2): (35, 20)})
    alpha.trending_tags = ["fediverse", "Caturday"]       # trend order; a list of names
    alpha.trends_enabled = False                          # /api/v1/trends/tags answers []
    alpha.find_tag("CATURDAY")                            # SimTag(id, name, normalized, usage)

Names are given without ``#`` and must be hashtags by Mastodon's ``Tag::HASHTAG_NAME_RE``
(letters, digits, marks and ``_`` with at least one letter, or ``_ · ・`` ZWNJ joining word
characters); anything else raises ValueError, as do negative figures and more accounts than
uses. A tag is found by its normalized name (``HashtagNormalizer``: NFKC, lower case, accents
folded: ``Café`` is ``cafe``) and shown as first spelled. ``day`` is a ``date`` (or an aware
``datetime``: its UTC date); ``tag_history`` sets the days given and keeps the others.

* ``GET /api/v1/tags/:name``: ``{"id", "name", "url", "history"}``: ``name`` as first
  spelled, ``url`` ``/tags/<normalized>``, ``history`` the last 7 UTC days of the simulated
  clock, newest (today, incomplete) first, each ``{"day": "<Unix midnight>", "accounts":
  "N", "uses": "N"}`` (strings). ``following`` and ``featuring`` (false) only with a valid
  token, as REST::TagSerializer does. Case and accents do not matter. A valid name nobody
  used answers 200 as Mastodon's unsaved ``Tag.new`` does: ``id`` ``""``, the name as asked,
  zeros. A name that is not a hashtag (``123``, ``cat-day``) answers 404
  ``{"error":"Not Found"}`` (``ApplicationController#not_found``, not "Record not found").
* ``GET /api/v1/trends/tags?limit=N&offset=M``: the trending tags from ``offset``, ``limit``
  of them (default 10, ``|to_i|`` capped at 20), each a tag object as above; ``[]`` when
  ``trends_enabled`` is False. ``Link``: ``rel="next"`` (``offset`` + ``limit``) whenever the
  page is full, ``rel="prev"`` only when ``offset`` exceeds ``limit``, as Mastodon's
  controller does.

Rate limits
-----------
Fixed windows on real time (``time.time()``), aligned like Rack::Attack: window index =
``floor(now / window)``; a test compresses time by giving short windows (``RateLimit(limit=3,
window=1.5)``). Two throttles, counted per instance (all test traffic comes from one IP):

* the API throttle (``rate_limit``): every ``/api/*`` request counts (errors and faults too,
  except ``reset`` and ``timeout``);
* the paging throttle (``paging_limit``): every request with ``page``, ``min_id``,
  ``max_id`` or ``since_id`` present (not blank) in its query, on any path (Rack::Attack's
  rule names no path), counts again, in windows of its own.

They apply in Mastodon's order: the API throttle first; a request it refuses is not counted by
the paging throttle; a request the paging throttle refuses has been counted by the API
throttle. Every ``/api/*`` answer carries ``X-RateLimit-Limit``, ``X-RateLimit-Remaining``
and ``X-RateLimit-Reset`` (ISO 8601 UTC with microseconds, the end of the window) of the
throttle *closest to its limit* among those that counted the request (least remaining; the
API throttle on a tie), unless that throttle's ``send_headers=False``. A non-paging request
thus shows the API budget only; a paging request shows the paging budget as soon as it is the
tighter one. Over a limit: 429 ``{"error":"Too many requests"}`` with the refusing throttle's
Limit, Remaining 0 and its window's Reset, and no ``Retry-After`` unless that throttle's
``retry_after=True``; outside ``/api`` only the 429 carries headers. ``/.well-known/*`` and
NodeInfo never count toward the API throttle. ``inst.reset_rate_limit()`` renews both budgets
at once.

What Mastodon does (checked in ``mastodon/mastodon`` and ``rack/rack-attack``):

* ``config/initializers/rack_attack.rb``: ``throttle_unauthenticated_api`` 300 per 5 minutes
  per IP (IPv6 by /64) for ``/api`` requests without a user; ``throttle_unauthenticated_paging``
  300 per 15 minutes per IP for ``paging_request?`` (``params['page'|'min_id'|'max_id'|
  'since_id'].present?``, any path) without a user; signed-in users have
  ``throttle_authenticated_paging`` (300 per 15 minutes per user) and 1,500 per 5 minutes per
  user plus 300 per token for the API. The simulator keeps one bucket per throttle and
  instance whether or not a request has a token. The throttled responder answers 429
  ``{"error":"Too many requests"}`` with ``X-RateLimit-Limit`` = the refusing throttle's
  limit, ``X-RateLimit-Remaining: 0``, ``X-RateLimit-Reset`` = the end of its period
  (``iso8601(6)``) and no ``Retry-After``.
* ``lib/rack/attack/throttle.rb`` and ``configuration.rb`` (``rack/rack-attack``): throttles
  are checked in declaration order and stop at the first that refuses (``any?``); each one
  checked increments its counter and records itself in ``rack.attack.throttle_data``.
* ``app/controllers/concerns/rate_limit_headers.rb`` (included by ``Api::BaseController``):
  the headers of a normal answer come from ``throttle_data.min_by { limit - count }``, the
  throttle closest to its limit, not always the API one. The documentation says so too
  (``mastodon/documentation`` ``content/en/api/rate-limits.md``: "The headers return
  information about the one you are closest to exceeding"). Early versions (the throttle was
  then named ``api``) read the API throttle only.

Faults
------
``inst.faults.append(Fault(kind=..., endpoint=..., times=..., probability=...,
account_ids=...))``. For every request the first matching fault that is not spent applies;
``times=N`` spends it after N answers, ``duration=S`` spends it S seconds (real time) after
its first answer, ``probability`` rolls the seeded RNG, ``endpoint`` is
an endpoint kind (``webfinger``, ``nodeinfo_discovery``, ``nodeinfo``, ``lookup``, ``account``,
``batch``, ``instance``, ``instance_v2``, ``activity``, ``peers``, ``post``, ``status``,
``account_statuses``, ``tag``, ``trends``, ``other``; None for all),
``account_ids`` targets ids (a batch matches when any requested id is targeted).
``fault.hits`` counts the answers it gave (``fault.first_hit`` is the ``time.time()`` of the
first); ``fault.describe()`` is a short line for logs. Kinds:

* ``status``: ``status`` (default 500) with a Mastodon-style ``{"error": ...}`` body;
* ``html``: an HTML page, 200 by default (a CDN's browser check), or a proxy's
  ``502 Bad Gateway`` page when ``status`` is 5xx;
* ``malformed``: 200, JSON content type, the normal body cut short (never valid JSON);
* ``wrong_type``: 200 with the normal body's shape but bad values: counts as ``"lots"``,
  negative numbers, fractions or numeric strings, ids as numbers, dates as ``"not a date"``;
* ``timeout``: no answer; the connection stays open until the client gives up (or the host
  goes down);
* ``reset``: the connection is aborted with a TCP RST, no answer;
* ``drip``: the normal answer, the body one byte every ``interval`` seconds;
* ``truncated``: the normal headers with the full Content-Length, half the body, then close;
* ``redirect``: ``status`` (default 302) to ``location``, or with ``target=other_instance``
  to the same path and query on that instance's web host (no address needed up front). A
  loop between two hosts: ``a.faults.append(Fault(kind="redirect", target=b))`` and
  ``b.faults.append(Fault(kind="redirect", target=a))``; ``target`` set to the instance itself
  loops on one host;
* ``content_type``: the normal answer (status, valid JSON body, rate-limit headers) under
  another Content-Type: ``content_type=`` (default ``text/html; charset=utf-8``; also
  ``text/plain``, ``application/octet-stream``...). The application runs, as for ``drip``;
* ``rate_limited``: a 429 storm. Every matching request gets 429 ``{"error":"Too many
  requests"}`` with ``X-RateLimit-Limit`` (the instance's limit, 300 without one),
  ``X-RateLimit-Remaining: 0``, ``X-RateLimit-Reset`` and ``Retry-After`` (whole seconds,
  rounded up) both pointing at the storm's end: ``first_hit + duration``, or without a
  ``duration`` the end of the current window. ``retry_after=False`` leaves ``Retry-After`` out,
  as Mastodon itself does (proxies add it); an instance whose ``RateLimit`` has
  ``send_headers=False`` gets no ``X-RateLimit-*``. The storm's requests count toward the real
  budget but are not ``over_limit`` in the log (their fault is ``rate_limited``). A 5-second
  storm from the first request: ``Fault(kind="rate_limited", duration=5.0)``. (A ``status``
  fault with ``status=429`` is a bare error: the body only, with the real window's headers.)

``body=`` replaces the generated body of ``status``, ``html`` and ``malformed`` faults.
``content_type=`` relabels the answer of any kind that answers: ``Fault(kind="html",
content_type="application/json")`` is an HTML page labelled JSON (as is ``Fault(kind="malformed",
body="<html>...")``).

Outages
-------
A host that vanishes and comes back: its listening sockets close and its open connections
(keep-alive and in-flight ones) are dropped, so connecting is refused; the ports stay reserved
(bound, not listening) and it comes back on the same ones. ``inst.up`` says which::

    with world.run_in_thread() as w:
        w.take_down("beta")                  # from the test thread: returns once refusing
        ...                                  # httpx.ConnectError for beta; others answer
        w.bring_up("beta")                   # same ports, answers again
        outage = w.schedule_outage("beta", after=2.0, lasting=3.0)   # real time, from now

``take_down``/``bring_up`` are safe from any thread; on the world's loop (``serving()`` in an
async test) they act at once. On a world that does not serve yet, ``take_down`` makes the
instance start down. ``schedule_outage(name, after=..., lasting=...)`` declared before serving
counts from when serving starts (``after=0``: down before the first request); ``lasting=None``
is for good. It returns an ``Outage`` (``began``/``ended`` as ``time.monotonic()``, None until
then); ``world.outages`` lists them. Overlapping outages keep a host down until the last one
ends; an outage cut short by the end of serving leaves the host up and does not run again.
Refused connections never reach the request log; a request in flight when its host goes down
stays there with status None.

Chaos
-----
A whole faulty world from one seed, for long fault benchmarks::

    from fedimeter.simfedi import ChaosRates, add_chaos

    report = add_chaos(world, rng=42)                    # every instance; or a list of them
    report = add_chaos(world, [a, b], rng=42, rates=ChaosRates(down=0.0, flaky=0.5))
    print(report.describe())                             # one line per host, then the counts
    report.measurable(alice)                             # False if refused for good
    report.measurable_accounts, report.unmeasurable_accounts   # {account: reason}

Each instance gets one profile drawn by the weights of ``ChaosRates`` (``CHAOS_PROFILES``):
``healthy``; ``flaky`` (2-4 of: JSON 5xx, a proxy's HTML 502, reset, timeout, malformed,
truncated, wrong_type, content_type, each with a probability from ``fault_probability``);
``limited`` (limited federation: 401 on every API call); ``html`` (a CDN's HTML 200 for every
request); ``unprocessable`` (422 on the batch call only); ``rate_limited`` (a storm of
``storm`` seconds from the first request, Retry-After on 3 hosts in 4); ``slow`` (drips);
``redirect`` (some requests to the same path on another host); ``redirect_loop`` (pairs
redirecting to each other, an odd one out to itself); ``outage`` (one or two outages,
``outage_after`` and ``outage_lasting``); ``down`` (for good). Independently a share of hosts
answers 410 instead of 404 for deleted accounts (``gone_410``) and a share of accounts is
deleted or suspended (``deleted``, ``suspended``). Call it once the accounts exist, before or
while serving. Equal seeds over equal worlds give equal chaos; the world's own RNG is not
touched. An account is measurable in principle unless it is deleted or suspended, or its host
refuses for good: ``limited``, ``html``, ``redirect_loop``, ``down``, or software that refuses
it without a token (Misskey, Pixelfed, GoToSocial, limited federation set before).

The request log
---------------
``world.requests`` is a thread-safe snapshot of ``RequestRecord`` values (instance, server
``web``/``alias``, method, path, query as ``dict[str, list[str]]``, endpoint kind, status (None
for ``timeout``/``reset``), counted (by the API throttle), over_limit, fault, started/finished
as ``time.monotonic()``, paging (counted by the paging throttle), throttle (``api`` or
``paging``: the one that refused it, else None)). ``world.count(instance=, endpoint=,
status=, paging=)`` counts them (``endpoint="account_statuses"`` for one endpoint kind,
``paging=True`` for paging requests), ``world.count_over_limit(instance=, throttle=)``
counts requests that arrived after a window's budget was spent (each got 429), all or those
of one throttle: a polite collector keeps it at 0. ``world.clear_requests()`` empties the
log.
"""

from fedimeter.simfedi._accounts import SimAccount
from fedimeter.simfedi._chaos import PROFILES as CHAOS_PROFILES
from fedimeter.simfedi._chaos import ChaosRates, ChaosReport, HostChaos, add_chaos
from fedimeter.simfedi._faults import Endpoint, Fault, FaultKind
from fedimeter.simfedi._instance import SimInstance
from fedimeter.simfedi._outages import Outage
from fedimeter.simfedi._ratelimit import RateLimit, Throttle
from fedimeter.simfedi._reads import DEFAULT_TAGS_LIMIT
from fedimeter.simfedi._records import RequestRecord
from fedimeter.simfedi._request import MAX_REQUEST_BODY
from fedimeter.simfedi._routes import BATCH_LIMIT
from fedimeter.simfedi._statuses import Engagement, SimStatus, Visibility
from fedimeter.simfedi._tags import HISTORY_DAYS, SimTag
from fedimeter.simfedi._timeline import DEFAULT_STATUSES_LIMIT
from fedimeter.simfedi._world import (
    DEFAULT_START,
    MASTODON_PAGING_LIMIT,
    MASTODON_RATE_LIMIT,
    SimFediverse,
)

__all__ = [
    "BATCH_LIMIT",
    "CHAOS_PROFILES",
    "DEFAULT_START",
    "DEFAULT_STATUSES_LIMIT",
    "DEFAULT_TAGS_LIMIT",
    "HISTORY_DAYS",
    "MASTODON_PAGING_LIMIT",
    "MASTODON_RATE_LIMIT",
    "MAX_REQUEST_BODY",
    "ChaosRates",
    "ChaosReport",
    "Endpoint",
    "Engagement",
    "Fault",
    "FaultKind",
    "HostChaos",
    "Outage",
    "RateLimit",
    "RequestRecord",
    "SimAccount",
    "SimFediverse",
    "SimInstance",
    "SimStatus",
    "SimTag",
    "Throttle",
    "Visibility",
    "add_chaos",
]
