/* Rules and actors, loaded from YAML and compiled into one Vectorscan
 * database. A ruleset is immutable once compiled: a reload builds a new one
 * aside and swaps it in, so a failed reload leaves the old one in service. */
#ifndef NEWSALERT_RULESET_H
#define NEWSALERT_RULESET_H

#include <stdbool.h>
#include <stddef.h>

#include "newsalert/error.h"

#define NA_MAX_TAGS 16

enum na_context {
    NA_CONTEXT_NONE = 0, /* the term counts on its own */
    NA_CONTEXT_SENTENCE, /* needs a state/organisation actor in its sentence */
    NA_CONTEXT_ARTICLE,  /* needs one anywhere in the article */
};

enum na_actor_kind {
    NA_ACTOR_STATE = 1,
    NA_ACTOR_ORGANISATION = 2,
};

#define NA_MAX_PARTS 4

struct na_term {
    char *source; /* the phrase or regex as written; for near: the parts
                     joined with " ~ " */
    bool is_regex;
    /* A "near" term: every part (a regex) must match within one sentence;
     * the match spans from the first part to the last. */
    char *parts[NA_MAX_PARTS];
    size_t n_parts;
    bool case_sensitive;
    double weight;
    enum na_context context;
    /* Exclusions: veto only the matches that lie inside this one's span
     * ("veto: within"), rather than every match it overlaps. */
    bool veto_within;
    const char *file; /* borrowed from the ruleset's file table */
    int line;
};

struct na_tag {
    char *name;
    char *description;
    double threshold;
    double headline_weight;
    struct na_term *terms;
    size_t n_terms;
    struct na_term *excludes;
    size_t n_excludes;
};

struct na_actor {
    char *code;
    char *name;
    enum na_actor_kind kind;
};

/* What one Vectorscan pattern id stands for. */
enum na_pattern_kind { NA_PAT_TERM, NA_PAT_EXCLUDE, NA_PAT_ACTOR };

struct na_pattern {
    enum na_pattern_kind kind;
    unsigned tag;     /* for terms and exclusions */
    unsigned index;   /* into the tag's terms/excludes, or the actor table */
    unsigned part;    /* which part of a near term (0 otherwise) */
    unsigned term_id; /* terms and exclusions: a number unique across all tags */
    /* Word boundaries asserted at the ends of the match. They are checked by
     * the tagger rather than compiled as \b, because Vectorscan compiles
     * boundary assertions slowly (seconds for a thousand aliases). */
    bool bound_start, bound_end;
    /* The expression can match texts of different lengths, so a failed
     * start boundary may hide a later start (the tagger then looks again). */
    bool variable_width;
    unsigned literal_len; /* actors: the alias's length (matched without SOM) */
    /* Matched by the phrase matcher on word tokens (phrases.h) rather than
     * by Vectorscan; when not, why_regex says why (a static string). */
    bool on_tokens;
    const char *why_regex;
    /* Terms and exclusions: the number of parts of a near term, 0 if none
     * (a copy of the term's n_parts, for the tagger's hot loop). */
    unsigned n_parts;
};

struct na_ruleset;
struct na_phrases;

/* Loads every *.yaml file of rules_dir (one tag each, in name order) and the
 * actors file, and compiles them. Returns a ruleset the caller owns, or NULL
 * with "file:line: what is wrong" in err. */
struct na_ruleset *na_ruleset_load(const char *rules_dir, const char *actors_file,
                                   struct na_error *err);

/* Accepts NULL. */
/* The same, with the compiled database cached in cache_dir (created when
 * missing; NULL: no cache): a database compiled from the very same patterns
 * by the same Vectorscan is read back instead of compiled, which turns a
 * start or reload from hundreds of milliseconds into a few. A damaged or
 * foreign cache file is ignored and replaced. */
struct na_ruleset *na_ruleset_load_cached(const char *rules_dir, const char *actors_file,
                                          const char *cache_dir, struct na_error *err);
struct na_ruleset_options {
    const char *cache_dir; /* as for na_ruleset_load_cached; NULL: none */
    /* Every pattern to Vectorscan, none to the phrase matcher: the reference
     * that the phrase matcher is tested against. */
    bool regex_only;
};
/* The same, with options (NULL: the defaults). */
struct na_ruleset *na_ruleset_load_opts(const char *rules_dir, const char *actors_file,
                                        const struct na_ruleset_options *opts,
                                        struct na_error *err);

/* True when the database came from the cache. */
bool na_ruleset_from_cache(const struct na_ruleset *rs);

void na_ruleset_free(struct na_ruleset *rs);

/* Look-ups; the pointers are borrowed and live as long as the ruleset. */
size_t na_ruleset_tag_count(const struct na_ruleset *rs);
const struct na_tag *na_ruleset_tag(const struct na_ruleset *rs, size_t i);
size_t na_ruleset_actor_count(const struct na_ruleset *rs);
const struct na_actor *na_ruleset_actor(const struct na_ruleset *rs, size_t i);
size_t na_ruleset_pattern_count(const struct na_ruleset *rs);
/* Number of terms and exclusions over all tags (the range of term_id). */
size_t na_ruleset_term_count(const struct na_ruleset *rs);
const struct na_pattern *na_ruleset_pattern(const struct na_ruleset *rs, unsigned id);
/* All na_ruleset_pattern_count() patterns, indexed by Vectorscan id: for the
 * tagger's match callback, which runs a hundred times an article. */
const struct na_pattern *na_ruleset_patterns(const struct na_ruleset *rs);
/* The compiled Vectorscan database (an hs_database_t *), NULL when every
 * pattern is matched on tokens. */
const void *na_ruleset_database(const struct na_ruleset *rs);
/* The patterns matched on word tokens. */
const struct na_phrases *na_ruleset_phrases(const struct na_ruleset *rs);
/* Index of the tag called name, or -1. */
int na_ruleset_tag_find(const struct na_ruleset *rs, const char *name);

#endif
