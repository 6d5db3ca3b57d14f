"""Result schemas the agents declare: a program's /output/results.json must validate against its
agent's schema before anything uses it (layer 4)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class _Strict(BaseModel):
    model_config = ConfigDict(extra="ignore")


class RankedRow(_Strict):
    id: str = Field(max_length=200)
    title: str = Field(max_length=500)
    score: float
    reason: str = Field(default="", max_length=2000)


class RankedOutput(_Strict):
    items: list[RankedRow] = Field(max_length=1000)
    notes: list[str] = Field(default_factory=list, max_length=50)


class GenreStat(_Strict):
    genre: str
    mean_rating: float
    ratings: int


class TitleStat(_Strict):
    id: str
    title: str
    mean_rating: float
    ratings: int


class AnalysisOutput(_Strict):
    rows: int
    genres: list[GenreStat]
    top_titles: list[TitleStat]
    completion_rate: float = Field(ge=0.0, le=1.0)
    chart: str


class SonaOutput(_Strict):
    version: int = Field(ge=1)
    previous_version: int = Field(ge=0)
    interactions: int
    loss_before: float
    loss_after: float
    ewc_penalty: float
    delta_norm: float
    adapter: str


class StreamInfo(_Strict):
    codec_type: str | None = None
    codec_name: str | None = None
    sample_rate: str | None = None
    channels: int | None = None
    width: int | None = None
    height: int | None = None


class MediaInfo(_Strict):
    name: str
    format_name: str | None = None
    duration_s: float | None = None
    bit_rate: int | None = None
    size: int | None = None
    streams: list[StreamInfo] = Field(default_factory=list)
    error: str | None = None


class ContentOutput(_Strict):
    files: list[MediaInfo]


class PageMetadata(_Strict):
    url: str
    title: str | None
    description: str | None
    genres: list[str] = Field(default_factory=list)
    year: int | None = None
    rating: str | None = None
    og: dict[str, str | None] = Field(default_factory=dict)


class ScrapeOutput(_Strict):
    pages: list[PageMetadata]
    screenshot: str
