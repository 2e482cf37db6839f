/* The tagger: one Vectorscan pass per text, then exclusions, context rules,
 * scoring, evidence and actors. Everything it needs per article lives in
 * buffers that grow to the largest article seen and are then reused, so the
 * steady state allocates nothing. */
#include <hs.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "newsalert/model.h"
#include "newsalert/phrases.h"
#include "newsalert/sentence.h"
#include "newsalert/tagger.h"
#include "newsalert/utf8.h"
#include "wordchar.h"

/* A term counts fully the first time, half the second, a quarter the third,
 * and not after that: repetition is weak evidence, and a text that repeats a
 * trigger word a million times must not score a million. */
#define NA_MAX_REPEATS 3

struct raw_match {
    unsigned id;
    uint32_t start, end;
    enum na_field field;
};

/* A match whose leftmost start failed its word-boundary check: a later
 * start of the same pattern, ending at the same place, may pass it. */
struct retry {
    unsigned id;
    uint32_t start, end;
};

/* Progress of one "near" term within the current sentence. */
struct near_state {
    uint32_t gen;
    enum na_field field;
    size_t sentence;
    unsigned mask;
    uint32_t start, end;
    bool emitted;
};

struct field_state {
    struct na_span *spans;
    size_t n_spans, cap_spans;
    unsigned char *has_actor; /* per sentence */
    size_t cap_has_actor;
};

struct na_tagger {
    const struct na_ruleset *rs;
    const struct na_pattern *patterns; /* the ruleset's, by Vectorscan id */
    struct na_tagger_limits limits;
    hs_scratch_t *scratch;

    struct raw_match *raw;
    size_t n_raw, cap_raw;
    enum na_field scanning;
    const unsigned char *text; /* the text being scanned */
    size_t text_len;
    bool truncated;
    /* Matches of one pattern from one start collapse into the longest: the
     * several end offsets Vectorscan reports for one match ("pledg\w*" at
     * "pledged"), and a phrase's alternatives from one word. by_start finds
     * the raw match of a (field, pattern, start), stamped by generation. */
    struct start_slot {
        uint32_t gen, idx;
        uint64_t key;
    } *by_start;
    size_t by_start_mask;
    struct na_phrase_scratch phrase_scratch;
    struct raw_match *near_order; /* the parts of near terms, sorted */
    size_t cap_near_order;
    uint32_t *repeats; /* per term id: times counted in this article */
    uint32_t gen;
    struct retry *retry;
    size_t n_retry, cap_retry;
    const struct retry *retrying; /* the retry being scanned for */
    size_t retry_base;            /* where its window starts in the text */

    struct field_state fields[2];
    struct near_state *near; /* per term id */
    unsigned *mentions;      /* per actor */
    struct na_actor_hit *actor_hits;
    struct na_match *matches;
    size_t cap_matches;
    struct na_evidence *evidence; /* n_tags * max_evidence */
    struct na_evidence *sentence_acc;
    size_t cap_sentence_acc;

    /* The learned layer. */
    const struct na_model *model;
    bool keep_features;
    struct na_featbuf features; /* the article's, when have_features */
    bool have_features;
    struct na_hashbuf hashes; /* what the model weighs */
    bool cut[2];              /* the phrase matcher cut this field */
    struct na_model_scratch model_scratch;
    double *sentence_score[2];
    size_t cap_sentence_score[2];
    struct na_result res;
};

double na_confidence(double score, double threshold)
{
    if (score <= 0 || threshold <= 0)
        return 0;
    return 1.0 - pow(0.5, score / threshold);
}

enum na_priority na_priority_of(double confidence)
{
    if (confidence >= 0.85)
        return NA_PRIORITY_HIGH;
    if (confidence >= 0.6)
        return NA_PRIORITY_NORMAL;
    return NA_PRIORITY_LOW;
}

const char *na_priority_name(enum na_priority p)
{
    switch (p) {
    case NA_PRIORITY_HIGH:
        return "high";
    case NA_PRIORITY_NORMAL:
        return "normal";
    case NA_PRIORITY_LOW:
        return "low";
    }
    return "unspecified";
}

const char *na_field_name(enum na_field f)
{
    return f == NA_FIELD_HEADLINE ? "headline" : "body";
}

const char *na_fate_name(enum na_match_fate f)
{
    static const char *const names[] = {"counted", "vetoed", "no-context", "contained",
                                        "repeat"};
    return (unsigned)f < sizeof(names) / sizeof(names[0]) ? names[f] : "?";
}

struct na_tagger *na_tagger_new(const struct na_ruleset *rs,
                                const struct na_tagger_limits *limits,
                                struct na_error *err)
{
    struct na_tagger *t = calloc(1, sizeof(*t));
    size_t na = na_ruleset_actor_count(rs);
    size_t nt = na_ruleset_tag_count(rs);

    if (t == NULL)
        goto oom;
    t->rs = rs;
    t->patterns = na_ruleset_patterns(rs);
    t->limits = *limits;
    if (t->limits.max_matches == 0)
        t->limits.max_matches = 1;
    if (na_ruleset_database(rs) &&
        hs_alloc_scratch((const hs_database_t *)na_ruleset_database(rs), &t->scratch) !=
            HS_SUCCESS) {
        na_error_set(err, "cannot allocate Vectorscan scratch space");
        goto fail;
    }
    t->repeats = calloc(na_ruleset_term_count(rs) + 1, sizeof(*t->repeats));
    t->mentions = calloc(na ? na : 1, sizeof(*t->mentions));
    t->near = calloc(na_ruleset_term_count(rs) + 1, sizeof(*t->near));
    t->actor_hits = calloc(na ? na : 1, sizeof(*t->actor_hits));
    t->evidence = calloc(nt * (t->limits.max_evidence ? t->limits.max_evidence : 1),
                         sizeof(*t->evidence));
    /* Never NULL, so that slicing it into per-tag runs (&matches[i]) is
     * defined even before the first article with a match. */
    t->cap_matches = 64;
    t->matches = malloc(t->cap_matches * sizeof(*t->matches));
    if (!t->repeats || !t->mentions || !t->near ||
        !t->actor_hits || !t->evidence || !t->matches)
        goto oom;
    return t;
oom:
    na_error_set(err, "out of memory");
fail:
    na_tagger_free(t);
    return NULL;
}

void na_tagger_free(struct na_tagger *t)
{
    if (t == NULL)
        return;
    hs_free_scratch(t->scratch);
    free(t->raw);
    free(t->by_start);
    free(t->near_order);
    na_phrases_scratch_release(&t->phrase_scratch);
    free(t->repeats);
    for (int i = 0; i < 2; i++) {
        free(t->fields[i].spans);
        free(t->fields[i].has_actor);
    }
    free(t->mentions);
    free(t->near);
    free(t->actor_hits);
    free(t->matches);
    free(t->evidence);
    free(t->sentence_acc);
    free(t->retry);
    na_model_scratch_release(&t->model_scratch);
    free(t->sentence_score[0]);
    free(t->sentence_score[1]);
    na_featbuf_release(&t->features);
    na_hashbuf_release(&t->hashes);
    free(t);
}

void na_tagger_set_model(struct na_tagger *t, const struct na_model *m)
{
    t->model = m;
}

void na_tagger_keep_features(struct na_tagger *t, bool on)
{
    t->keep_features = on;
}

const struct na_ruleset *na_tagger_ruleset(const struct na_tagger *t)
{
    return t->rs;
}

static bool word_char_before(const struct na_tagger *t, size_t i)
{
    if (i == 0)
        return false;
    unsigned char c = t->text[i - 1];
    if (c < 0x80)
        return na_word_byte[c];
    size_t k = i - 1;
    while (k > 0 && i - k < 4 && (t->text[k] & 0xc0) == 0x80)
        k--;
    return na_utf8_letter_at(t->text, k, t->text_len);
}

static bool word_char_at(const struct na_tagger *t, size_t i)
{
    if (i >= t->text_len)
        return false;
    unsigned char c = t->text[i];
    if (c < 0x80)
        return na_word_byte[c];
    if ((c & 0xc0) == 0x80)
        return true; /* inside a character: never a boundary */
    return na_utf8_letter_at(t->text, i, t->text_len);
}

/* The \b assertion at offset i of the text being scanned, with letters as
 * utf8_letter_at has them. */
static inline bool boundary_at(const struct na_tagger *t, size_t i)
{
    return word_char_before(t, i) != word_char_at(t, i);
}

/* The slot of (field, pattern, start) in by_start: its match, or where to
 * put one. */
static struct start_slot *start_slot(struct na_tagger *t, unsigned id, uint32_t from)
{
    uint64_t key = (uint64_t)id << 34 | (uint64_t)t->scanning << 32 | from;
    uint64_t h = key * 0x9e3779b97f4a7c15ull;
    size_t k = (size_t)(h >> 40) & t->by_start_mask;
    while (t->by_start[k].gen == t->gen && t->by_start[k].key != key)
        k = (k + 1) & t->by_start_mask;
    t->by_start[k].key = key;
    return &t->by_start[k];
}

static int grow_by_start(struct na_tagger *t)
{
    size_t n = t->by_start ? (t->by_start_mask + 1) * 2 : 512;
    struct start_slot *old = t->by_start;
    size_t old_n = old ? t->by_start_mask + 1 : 0;
    if ((t->by_start = calloc(n, sizeof(*t->by_start))) == NULL) {
        t->by_start = old;
        return -1;
    }
    t->by_start_mask = n - 1;
    enum na_field scanning = t->scanning;
    for (size_t i = 0; i < old_n; i++)
        if (old[i].gen == t->gen) {
            const struct raw_match *m = &t->raw[old[i].idx];
            t->scanning = m->field;
            struct start_slot *s = start_slot(t, m->id, m->start);
            s->gen = t->gen;
            s->idx = old[i].idx;
        }
    t->scanning = scanning;
    free(old);
    return 0;
}

static int add_raw(struct na_tagger *t, unsigned id, uint32_t from, uint32_t to)
{
    if ((t->n_raw + 1) * 2 > (t->by_start ? t->by_start_mask + 1 : 0) &&
        grow_by_start(t) < 0) {
        t->truncated = true;
        return 1;
    }
    struct start_slot *slot = start_slot(t, id, from);
    if (slot->gen == t->gen) {
        struct raw_match *prev = &t->raw[slot->idx];
        if (to > prev->end)
            prev->end = to;
        return 0;
    }
    if (t->n_raw == t->limits.max_matches) {
        t->truncated = true;
        return 1; /* stop the scan: the limit holds whatever the input */
    }
    if (t->n_raw == t->cap_raw) {
        size_t ncap = t->cap_raw ? t->cap_raw * 2 : 256;
        struct raw_match *grown = realloc(t->raw, ncap * sizeof(*grown));
        if (grown == NULL) {
            t->truncated = true;
            return 1;
        }
        t->raw = grown;
        t->cap_raw = ncap;
    }
    slot->gen = t->gen;
    slot->idx = (uint32_t)t->n_raw;
    t->raw[t->n_raw++] = (struct raw_match){id, from, to, t->scanning};
    return 0;
}

/* Start-of-match mode reports the leftmost start for each end. When that
 * start is inside a word, a later start of the same pattern may still be a
 * match ("(multilateral )?development bank" in "xmultilateral development
 * bank"), so the span after the failed start is scanned again. Only
 * patterns that can match at more than one width need it. */
static int push_retry(struct na_tagger *t, unsigned id, uint32_t from, uint32_t to)
{
    if (to - from < 2 || t->n_retry >= t->limits.max_matches)
        return 0;
    if (t->n_retry == t->cap_retry) {
        size_t ncap = t->cap_retry ? t->cap_retry * 2 : 16;
        struct retry *p = realloc(t->retry, ncap * sizeof(*p));
        if (p == NULL)
            return 0;
        t->retry = p;
        t->cap_retry = ncap;
    }
    t->retry[t->n_retry++] = (struct retry){id, from, to};
    return 0;
}

static int on_match(unsigned id, unsigned long long from, unsigned long long to,
                    unsigned flags, void *ctx)
{
    struct na_tagger *t = ctx;
    const struct na_pattern *p = &t->patterns[id];
    (void)flags;

    if (p->literal_len)
        from = to - p->literal_len;
    if (p->bound_end && !boundary_at(t, to))
        return 0;
    if (p->bound_start && !boundary_at(t, from))
        return p->variable_width ? push_retry(t, id, (uint32_t)from, (uint32_t)to) : 0;
    return add_raw(t, id, (uint32_t)from, (uint32_t)to);
}

/* A report of a retry's scan: offsets are relative to its window. */
static int on_retry(unsigned id, unsigned long long from, unsigned long long to,
                    unsigned flags, void *ctx)
{
    struct na_tagger *t = ctx;
    const struct retry *r = t->retrying;
    (void)flags;

    from += t->retry_base;
    to += t->retry_base;
    if (id != r->id || to != r->end)
        return 0;
    if (!boundary_at(t, from)) {
        push_retry(t, id, (uint32_t)from, (uint32_t)to);
        return 1;
    }
    add_raw(t, id, (uint32_t)from, (uint32_t)to);
    return 1;
}

/* A phrase match: on word boundaries by construction. */
static int on_phrase(unsigned id, uint32_t from, uint32_t to, void *ctx)
{
    return add_raw(ctx, id, from, to);
}

static int scan(struct na_tagger *t, enum na_field field, const char *text, size_t len,
                struct na_error *err)
{
    if (len == 0 || t->truncated)
        return 0;
    t->scanning = field;
    t->text = (const unsigned char *)text;
    t->text_len = len;
    if (na_phrases_scan(na_ruleset_phrases(t->rs), &t->phrase_scratch, text, len,
                        on_phrase, t) < 0)
        return na_error_set(err, "out of memory");
    t->cut[field - 1] = true;
    const hs_database_t *db = na_ruleset_database(t->rs);
    if (db == NULL || t->truncated)
        return 0;
    t->n_retry = 0;
    hs_error_t rc = hs_scan(db, text, (unsigned)len, 0, t->scratch, on_match, t);
    while (rc == HS_SUCCESS && t->n_retry > 0 && !t->truncated) {
        struct retry r = t->retry[--t->n_retry];
        t->retrying = &r;
        t->retry_base = r.start + 1;
        rc = hs_scan(db, text + t->retry_base, r.end - (unsigned)t->retry_base, 0,
                     t->scratch, on_retry, t);
        if (rc == HS_SCAN_TERMINATED)
            rc = HS_SUCCESS;
    }
    if (rc != HS_SUCCESS && rc != HS_SCAN_TERMINATED)
        return na_error_set(err, "Vectorscan scan failed (%d)", rc);
    return 0;
}

static int split(struct field_state *f, const char *text, size_t len)
{
    long n = na_sentence_split(text, len, &f->spans, &f->cap_spans);
    if (n < 0)
        return -1;
    f->n_spans = (size_t)n;
    if (f->cap_has_actor < f->n_spans + 1) {
        unsigned char *p = realloc(f->has_actor, f->n_spans + 1);
        if (p == NULL)
            return -1;
        f->has_actor = p;
        f->cap_has_actor = f->n_spans + 1;
    }
    memset(f->has_actor, 0, f->n_spans + 1);
    return 0;
}

static size_t sentence_of(const struct na_tagger *t, enum na_field field, uint32_t offset)
{
    const struct field_state *f = &t->fields[field - 1];
    return f->n_spans ? na_sentence_find(f->spans, f->n_spans, offset) : 0;
}

/* Order: by tag, exclusions before terms, then by position, longer first,
 * so that each tag's matches form one run and containment is a sweep. */
static int cmp_match(const void *a, const void *b)
{
    const struct na_match *x = a, *y = b;
    if (x->tag != y->tag)
        return x->tag < y->tag ? -1 : 1;
    if (x->exclusion != y->exclusion)
        return x->exclusion ? -1 : 1;
    if (x->field != y->field)
        return (int)x->field - (int)y->field;
    if (x->start != y->start)
        return x->start < y->start ? -1 : 1;
    if (x->end != y->end)
        return x->end > y->end ? -1 : 1;
    return x->pattern < y->pattern ? -1 : x->pattern > y->pattern;
}

static void score_tag(struct na_tagger *t, unsigned tag, struct na_match *excl,
                      size_t n_excl, struct na_match *terms, size_t n_terms,
                      bool article_has_actor)
{
    const struct na_tag *def = na_ruleset_tag(t->rs, tag);
    struct na_tag_result *r = &t->res.tags[tag];
    uint32_t kept_end[3] = {0, 0, 0};
    bool kept_any[3] = {false, false, false};

    memset(r, 0, sizeof(*r));
    r->tag = tag;
    for (size_t i = 0; i < n_terms; i++) {
        struct na_match *m = &terms[i];
        const struct na_pattern *p = &t->patterns[m->pattern];
        const struct na_term *term = &def->terms[p->index];
        m->contribution = 0;
        m->fate = NA_FATE_COUNTED;
        for (size_t e = 0; e < n_excl; e++)
            if (excl[e].field == m->field && excl[e].start < m->end &&
                excl[e].end > m->start &&
                (!def->excludes[t->patterns[excl[e].pattern].index].veto_within ||
                 (m->start >= excl[e].start && m->end <= excl[e].end))) {
                m->fate = NA_FATE_VETOED;
                m->veto = excl[e].pattern;
                break;
            }
        if (m->fate == NA_FATE_VETOED)
            continue;
        if (kept_any[m->field] && m->end <= kept_end[m->field]) {
            m->fate = NA_FATE_CONTAINED;
            continue;
        }
        kept_any[m->field] = true;
        kept_end[m->field] = m->end;
        if (term->context == NA_CONTEXT_ARTICLE && !article_has_actor) {
            m->fate = NA_FATE_NO_CONTEXT;
            continue;
        }
        if (term->context == NA_CONTEXT_SENTENCE &&
            !t->fields[m->field - 1].has_actor[sentence_of(t, m->field, m->start)]) {
            m->fate = NA_FATE_NO_CONTEXT;
            continue;
        }
        uint32_t k = t->repeats[p->term_id]++;
        if (k >= NA_MAX_REPEATS) {
            m->fate = NA_FATE_REPEAT;
            continue;
        }
        m->contribution = term->weight * ldexp(1.0, -(int)k) *
                          (m->field == NA_FIELD_HEADLINE ? def->headline_weight : 1.0);
        r->score += m->contribution;
    }
    r->fired = r->score >= def->threshold;
    r->confidence = na_confidence(r->score, def->threshold);
    r->priority = na_priority_of(r->confidence);
}

/* Evidence: the sentences whose counted matches add the most to the score,
 * each with its strongest match. Matches are sorted by position, so the
 * matches of one sentence are adjacent. */
static int collect_evidence(struct na_tagger *t, unsigned tag,
                            const struct na_match *terms, size_t n_terms)
{
    struct na_tag_result *r = &t->res.tags[tag];
    size_t n_acc = 0, max_ev = t->limits.max_evidence;

    if (t->cap_sentence_acc < n_terms) {
        struct na_evidence *p = realloc(t->sentence_acc, n_terms * sizeof(*p));
        if (p == NULL)
            return -1;
        t->sentence_acc = p;
        t->cap_sentence_acc = n_terms;
    }
    size_t last_sentence = (size_t)-1;
    enum na_field last_field = 0;
    double best = 0;
    for (size_t i = 0; i < n_terms; i++) {
        const struct na_match *m = &terms[i];
        if (m->fate != NA_FATE_COUNTED || m->contribution <= 0)
            continue;
        size_t s = sentence_of(t, m->field, m->start);
        struct na_evidence *ev;
        if (s != last_sentence || m->field != last_field) {
            const struct na_span *sp = &t->fields[m->field - 1].spans[s];
            ev = &t->sentence_acc[n_acc++];
            *ev = (struct na_evidence){m->field, sp->start,  sp->end, m->start,
                                       m->end,   m->pattern, 0};
            best = 0;
            last_sentence = s;
            last_field = m->field;
        } else {
            ev = &t->sentence_acc[n_acc - 1];
        }
        ev->weight += m->contribution;
        if (m->contribution > best) {
            best = m->contribution;
            ev->term_start = m->start;
            ev->term_end = m->end;
            ev->term_pattern = m->pattern;
        }
    }
    /* Partial selection sort: max_evidence is small. */
    r->evidence = &t->evidence[tag * max_ev];
    for (size_t k = 0; k < max_ev && k < n_acc; k++) {
        size_t top = k;
        for (size_t j = k + 1; j < n_acc; j++)
            if (t->sentence_acc[j].weight > t->sentence_acc[top].weight)
                top = j;
        struct na_evidence tmp = t->sentence_acc[k];
        t->sentence_acc[k] = t->sentence_acc[top];
        t->sentence_acc[top] = tmp;
        r->evidence[k] = t->sentence_acc[k];
        r->n_evidence++;
    }
    return 0;
}

/* A part of a near term matched: the term matches once all its parts have
 * matched in one sentence. Returns true when m now completes it, with the
 * span of the whole in *out. */
static bool near_feed(struct na_tagger *t, const struct na_pattern *p, size_t n_parts,
                      const struct raw_match *m, struct na_match *out)
{
    struct near_state *st = &t->near[p->term_id];
    size_t s = sentence_of(t, m->field, m->start);

    if (st->gen != t->gen || st->field != m->field || st->sentence != s)
        *st = (struct near_state){t->gen, m->field, s, 0, m->start, m->end, false};
    if (st->emitted)
        return false;
    st->mask |= 1u << p->part;
    if (m->start < st->start)
        st->start = m->start;
    if (m->end > st->end)
        st->end = m->end;
    if (st->mask != (1u << n_parts) - 1)
        return false;
    st->emitted = true;
    *out = (struct na_match){.pattern = m->id,
                             .tag = p->tag,
                             .exclusion = p->kind == NA_PAT_EXCLUDE,
                             .field = m->field,
                             .start = st->start,
                             .end = st->end};
    return true;
}

/* Raw matches by position: field, start, end, then pattern. */
static int cmp_raw(const void *a, const void *b)
{
    const struct raw_match *x = a, *y = b;
    if (x->field != y->field)
        return (int)x->field - (int)y->field;
    if (x->start != y->start)
        return x->start < y->start ? -1 : 1;
    if (x->end != y->end)
        return x->end < y->end ? -1 : 1;
    return x->id < y->id ? -1 : x->id > y->id;
}

static int cmp_actor_hit(const void *a, const void *b)
{
    const struct na_actor_hit *x = a, *y = b;
    if (x->mentions != y->mentions)
        return x->mentions > y->mentions ? -1 : 1;
    return x->actor < y->actor ? -1 : x->actor > y->actor;
}

/* The learned layer's features of the article just tagged: the word
 * n-grams of its headline and body, each occurrence worth 1 (the model
 * weighs them; model.h). */
static int build_features(struct na_tagger *t, const char *headline, size_t headline_len,
                          const char *body, size_t body_len)
{
    struct na_featbuf *fb = &t->features;
    long hw;

    fb->n = 0;
    if ((hw = na_features_ngrams(fb, NA_FEAT_NGRAM, NA_FIELD_HEADLINE, headline,
                                 headline_len, t->fields[0].spans, t->fields[0].n_spans,
                                 NA_MODEL_NGRAM, NA_MODEL_MAX_WORDS)) < 0 ||
        na_features_ngrams(fb, NA_FEAT_NGRAM, NA_FIELD_BODY, body, body_len,
                           t->fields[1].spans, t->fields[1].n_spans, NA_MODEL_NGRAM,
                           NA_MODEL_MAX_WORDS - (size_t)hw) < 0)
        return -1;
    t->have_features = true;
    return 0;
}

/* The model's hashes of one field, appended, from the words the phrase
 * matcher has just cut it into when it did, else from its bytes: the
 * same hashes either way (features.h). Returns the words read, or -1. */
static long field_hashes(struct na_tagger *t, enum na_field field, const char *text,
                         size_t len, size_t max_words)
{
    const struct field_state *f = &t->fields[field - 1];
    const struct na_phrase_token *tk = NULL;
    size_t n_tk = 0;
    long w = -2;

    if (t->cut[field - 1])
        tk = na_phrases_tokens(&t->phrase_scratch, text, len, &n_tk);
    if (tk)
        w = na_features_hashes_tokens(&t->hashes, NA_FEAT_NGRAM, text, tk, n_tk, f->spans,
                                      f->n_spans, NA_MODEL_NGRAM, max_words);
    if (w == -2)
        w = na_features_hashes(&t->hashes, NA_FEAT_NGRAM, text, len, f->spans, f->n_spans,
                               NA_MODEL_NGRAM, max_words);
    return w;
}

/* The hashes the model weighs, from the features when they were kept (the
 * tagger hashes each field as it scans it otherwise). */
static int hashes_of_features(struct na_tagger *t)
{
    struct na_hashbuf *hb = &t->hashes;
    if (hb->cap < t->features.n) {
        uint32_t *p = realloc(hb->v, t->features.n * sizeof(*p));
        if (p == NULL)
            return -1;
        hb->v = p;
        hb->cap = t->features.n;
    }
    for (size_t i = 0; i < t->features.n; i++)
        hb->v[i] = t->features.v[i].hash;
    hb->n = t->features.n;
    return 0;
}

/* Evidence for a tag that the model fired without a counted rule match: the
 * sentence whose words weigh most for it, with its heaviest n-gram as the
 * term. Returns false when no sentence speaks for the tag. */
static bool model_evidence(struct na_tagger *t, unsigned tag)
{
    struct na_tag_result *r = &t->res.tags[tag];
    for (int fi = 0; fi < 2; fi++) {
        size_t ns = t->fields[fi].n_spans;
        if (t->cap_sentence_score[fi] < ns) {
            double *p = realloc(t->sentence_score[fi], ns * sizeof(*p));
            if (p == NULL)
                return false;
            t->sentence_score[fi] = p;
            t->cap_sentence_score[fi] = ns;
        }
        for (size_t i = 0; i < ns; i++)
            t->sentence_score[fi][i] = 0;
    }
    const struct na_feature *fv = t->features.v;
    for (size_t i = 0; i < t->features.n; i++) {
        if (fv[i].field == 0)
            continue;
        int fi = fv[i].field - 1;
        if (fv[i].sentence < t->fields[fi].n_spans)
            t->sentence_score[fi][fv[i].sentence] +=
                na_model_weight(t->model, tag, fv[i].hash) *
                na_model_value(t->model, &t->model_scratch, fv[i].hash);
    }
    int best_f = -1;
    size_t best_s = 0;
    for (int fi = 0; fi < 2; fi++)
        for (size_t i = 0; i < t->fields[fi].n_spans; i++)
            if (t->sentence_score[fi][i] > 0 &&
                (best_f < 0 || t->sentence_score[fi][i] > t->sentence_score[best_f][best_s])) {
                best_f = fi;
                best_s = i;
            }
    if (best_f < 0)
        return false;
    const struct na_span *sp = &t->fields[best_f].spans[best_s];
    struct na_evidence ev = {(enum na_field)(best_f + 1), sp->start, sp->end, sp->start,
                             sp->end, NA_EVIDENCE_MODEL, t->sentence_score[best_f][best_s]};
    double top = 0;
    for (size_t i = 0; i < t->features.n; i++) {
        if (fv[i].field != best_f + 1 || fv[i].sentence != best_s)
            continue;
        double w = na_model_weight(t->model, tag, fv[i].hash);
        if (w > top) {
            top = w;
            ev.term_start = fv[i].start;
            ev.term_end = fv[i].end;
        }
    }
    if (top <= 0)
        return false;
    r->evidence = &t->evidence[tag * t->limits.max_evidence];
    r->evidence[0] = ev;
    r->n_evidence = 1;
    return true;
}

/* The model decides: a calibrated probability per tag, firing at the
 * model's threshold. A tag needs evidence to fire: the rules' sentences when
 * they counted any, else the model's own. */
static int decide(struct na_tagger *t, const char *headline, size_t headline_len,
                  const char *body, size_t body_len)
{
    double d[NA_MAX_TAGS];
    if ((t->keep_features && hashes_of_features(t) < 0) ||
        na_model_decide(t->model, t->hashes.v, t->hashes.n, &t->model_scratch, d) < 0)
        return -1;
    t->res.model = t->model;
    t->res.model_values = &t->model_scratch;
    for (unsigned tag = 0; tag < t->res.n_tags; tag++) {
        struct na_tag_result *r = &t->res.tags[tag];
        double p = na_model_probability(t->model, tag, d[tag]);
        r->decision = d[tag];
        r->confidence = p;
        r->fired = p >= na_model_threshold(t->model, tag);
        if (r->fired && r->n_evidence == 0 && t->limits.max_evidence > 0) {
            /* the model's evidence needs each n-gram's sentence */
            if (!t->have_features &&
                build_features(t, headline, headline_len, body, body_len) < 0)
                return -1;
            if (!model_evidence(t, tag))
                r->fired = false;
        }
        r->priority = na_priority_of(p);
    }
    return 0;
}

int na_tagger_tag(struct na_tagger *t, const char *headline, size_t headline_len,
                  const char *body, size_t body_len, const struct na_result **out,
                  struct na_error *err)
{
    const struct na_ruleset *rs = t->rs;
    size_t n_tags = na_ruleset_tag_count(rs);
    bool article_has_actor = false;

    t->gen++;
    if (t->gen == 0) { /* wrapped: stale stamps could alias */
        if (t->by_start)
            memset(t->by_start, 0, (t->by_start_mask + 1) * sizeof(*t->by_start));
        memset(t->near, 0, (na_ruleset_term_count(rs) + 1) * sizeof(*t->near));
        t->gen = 1;
    }
    if (!na_utf8_valid(headline, headline_len) || !na_utf8_valid(body, body_len))
        return na_error_set(err, "the %s is not valid UTF-8",
                            na_utf8_valid(headline, headline_len) ? "body" : "headline");
    t->n_raw = 0;
    t->truncated = false;
    memset(&t->res, 0, sizeof(t->res));
    t->res.n_tags = n_tags;
    if (split(&t->fields[0], headline, headline_len) < 0 ||
        split(&t->fields[1], body, body_len) < 0)
        return na_error_set(err, "out of memory");
    /* The model's hashes of each field are taken as soon as it is scanned,
     * while the phrase matcher's tokens of it are at hand. */
    bool hash_now = t->model && !t->keep_features;
    long headline_words = 0;
    t->hashes.n = 0;
    t->cut[0] = t->cut[1] = false;
    if (scan(t, NA_FIELD_HEADLINE, headline, headline_len, err) < 0)
        return -1;
    if (hash_now && (headline_words = field_hashes(t, NA_FIELD_HEADLINE, headline,
                                                   headline_len, NA_MODEL_MAX_WORDS)) < 0)
        return na_error_set(err, "out of memory");
    if (scan(t, NA_FIELD_BODY, body, body_len, err) < 0)
        return -1;
    if (hash_now && field_hashes(t, NA_FIELD_BODY, body, body_len,
                                 NA_MODEL_MAX_WORDS - (size_t)headline_words) < 0)
        return na_error_set(err, "out of memory");

    /* Actors first: context rules depend on where they are. */
    size_t n_terms_total = 0;
    for (size_t i = 0; i < t->n_raw; i++) {
        const struct raw_match *m = &t->raw[i];
        const struct na_pattern *p = &t->patterns[m->id];
        if (p->kind != NA_PAT_ACTOR) {
            n_terms_total++;
            continue;
        }
        t->mentions[p->index]++;
        t->fields[m->field - 1].has_actor[sentence_of(t, m->field, m->start)] = 1;
        article_has_actor = true;
    }
    if (t->cap_matches < n_terms_total) {
        struct na_match *p = realloc(t->matches, n_terms_total * sizeof(*p));
        if (p == NULL)
            return na_error_set(err, "out of memory");
        t->matches = p;
        t->cap_matches = n_terms_total;
    }
    if (t->cap_near_order < t->n_raw) {
        struct raw_match *p = realloc(t->near_order, t->n_raw * sizeof(*p));
        if (p == NULL)
            return na_error_set(err, "out of memory");
        t->near_order = p;
        t->cap_near_order = t->n_raw;
    }
    size_t n = 0, n_near = 0;
    for (size_t i = 0; i < t->n_raw; i++) {
        const struct raw_match *m = &t->raw[i];
        const struct na_pattern *p = &t->patterns[m->id];
        if (p->kind == NA_PAT_ACTOR)
            continue;
        t->repeats[p->term_id] = 0;
        if (p->n_parts) {
            t->near_order[n_near++] = *m;
            continue;
        }
        t->matches[n++] = (struct na_match){.pattern = m->id,
                                            .tag = p->tag,
                                            .exclusion = p->kind == NA_PAT_EXCLUDE,
                                            .field = m->field,
                                            .start = m->start,
                                            .end = m->end};
    }
    /* The parts of near terms go in by position, whichever matcher found
     * them: a near term's state follows the text, sentence by sentence. */
    if (n_near > 1)
        qsort(t->near_order, n_near, sizeof(*t->near_order), cmp_raw);
    for (size_t k = 0; k < n_near; k++) {
        const struct raw_match *m = &t->near_order[k];
        const struct na_pattern *p = &t->patterns[m->id];
        if (near_feed(t, p, p->n_parts, m, &t->matches[n]))
            n++;
    }
    qsort(t->matches, n, sizeof(*t->matches), cmp_match);

    size_t i = 0;
    for (unsigned tag = 0; tag < n_tags; tag++) {
        size_t ex_start = i;
        while (i < n && t->matches[i].tag == tag && t->matches[i].exclusion) {
            t->matches[i].fate = NA_FATE_VETOED; /* an exclusion is itself a veto */
            i++;
        }
        size_t term_start = i;
        while (i < n && t->matches[i].tag == tag)
            i++;
        score_tag(t, tag, &t->matches[ex_start], term_start - ex_start,
                  &t->matches[term_start], i - term_start, article_has_actor);
        if (collect_evidence(t, tag, &t->matches[term_start], i - term_start) < 0)
            return na_error_set(err, "out of memory");
    }

    size_t n_hits = 0, n_actors = na_ruleset_actor_count(rs);
    for (unsigned a = 0; a < n_actors; a++)
        if (t->mentions[a]) {
            t->actor_hits[n_hits++] = (struct na_actor_hit){a, t->mentions[a]};
            t->mentions[a] = 0;
        }
    qsort(t->actor_hits, n_hits, sizeof(*t->actor_hits), cmp_actor_hit);

    t->res.actors = t->actor_hits;
    t->res.n_actors = n_hits;
    t->res.matches = t->matches;
    t->res.n_matches = n;
    t->res.truncated = t->truncated;
    t->have_features = false;
    if (t->keep_features && build_features(t, headline, headline_len, body, body_len) < 0)
        return na_error_set(err, "out of memory");
    if (t->model && decide(t, headline, headline_len, body, body_len) < 0)
        return na_error_set(err, "out of memory");
    if (t->have_features) {
        t->res.features = t->features.v;
        t->res.n_features = t->features.n;
    }
    for (unsigned tag = 0; tag < n_tags; tag++)
        if (t->res.tags[tag].fired)
            t->res.n_fired++;
    *out = &t->res;
    return 0;
}
