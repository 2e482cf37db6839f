/* Building newsalert.v1.Alert messages from tagging results, and their JSON
 * form. The builder keeps its arrays between alerts, so building allocates
 * only when an alert is bigger than any before it. */
#include <stdlib.h>
#include <string.h>

#include "newsalert/alert.h"
#include "newsalert/jsonl.h"
#include "newsalert/model.h"
#include "newsalert/utf8.h"

struct na_alert_builder {
    size_t max_evidence_bytes;
    Newsalert__V1__Alert alert;
    Newsalert__V1__TagResult tags[NA_MAX_TAGS];
    Newsalert__V1__TagResult *tag_ptrs[NA_MAX_TAGS];
    Newsalert__V1__Evidence *ev;
    Newsalert__V1__Evidence **ev_ptrs;
    size_t cap_ev;
    Newsalert__V1__Actor *actors;
    Newsalert__V1__Actor **actor_ptrs;
    size_t cap_actors;
    char *arena; /* NUL-terminated copies of evidence sentences and terms */
    size_t cap_arena;
};

struct na_alert_builder *na_alert_builder_new(size_t max_evidence_bytes)
{
    struct na_alert_builder *b = calloc(1, sizeof(*b));
    if (b)
        b->max_evidence_bytes = max_evidence_bytes ? max_evidence_bytes : 1;
    return b;
}

void na_alert_builder_free(struct na_alert_builder *b)
{
    if (b == NULL)
        return;
    free(b->ev);
    free(b->ev_ptrs);
    free(b->actors);
    free(b->actor_ptrs);
    free(b->arena);
    free(b);
}

static int reserve(void **p, size_t *cap, size_t want, size_t size)
{
    if (want <= *cap)
        return 0;
    void *n = realloc(*p, want * size);
    if (n == NULL)
        return -1;
    *p = n;
    *cap = want;
    return 0;
}

static int grow_arrays(struct na_alert_builder *b, size_t n_ev, size_t n_actors)
{
    size_t cap = b->cap_ev;
    if (reserve((void **)&b->ev, &cap, n_ev, sizeof(*b->ev)) < 0)
        return -1;
    cap = b->cap_ev;
    if (reserve((void **)&b->ev_ptrs, &cap, n_ev, sizeof(*b->ev_ptrs)) < 0)
        return -1;
    b->cap_ev = cap;
    cap = b->cap_actors;
    if (reserve((void **)&b->actors, &cap, n_actors, sizeof(*b->actors)) < 0)
        return -1;
    cap = b->cap_actors;
    if (reserve((void **)&b->actor_ptrs, &cap, n_actors, sizeof(*b->actor_ptrs)) < 0)
        return -1;
    b->cap_actors = cap;
    return 0;
}

static char *copy(char **arena, const char *s, size_t n)
{
    char *out = *arena;
    memcpy(out, s, n);
    out[n] = '\0';
    *arena += n + 1;
    return out;
}

static int cmp_tag(const void *a, const void *b)
{
    const Newsalert__V1__TagResult *x = *(Newsalert__V1__TagResult *const *)a;
    const Newsalert__V1__TagResult *y = *(Newsalert__V1__TagResult *const *)b;
    if (x->confidence != y->confidence)
        return x->confidence > y->confidence ? -1 : 1;
    return strcmp(x->tag, y->tag);
}

Newsalert__V1__Alert *na_alert_build(struct na_alert_builder *b,
                                     const Newsalert__V1__Article *article,
                                     const struct na_result *res,
                                     const struct na_ruleset *rs,
                                     const struct na_alert_meta *meta)
{
    const char *texts[3] = {NULL, article->headline ? article->headline : "",
                            article->body ? article->body : ""};
    size_t n_ev = 0, arena = 0;

    for (size_t i = 0; i < res->n_tags; i++) {
        if (!res->tags[i].fired)
            continue;
        n_ev += res->tags[i].n_evidence;
        for (size_t k = 0; k < res->tags[i].n_evidence; k++) {
            const struct na_evidence *e = &res->tags[i].evidence[k];
            size_t sl = e->end - e->start;
            arena += (sl < b->max_evidence_bytes ? sl : b->max_evidence_bytes) + 1;
            arena += e->term_end - e->term_start + 1;
        }
    }
    if (grow_arrays(b, n_ev, res->n_actors) < 0 ||
        reserve((void **)&b->arena, &b->cap_arena, arena + 1, 1) < 0)
        return NULL;

    Newsalert__V1__Alert *a = &b->alert;
    newsalert__v1__alert__init(a);
    a->seq = meta->seq;
    a->epoch = meta->epoch;
    a->received_at_ms = meta->received_at_ms;
    a->update_of = meta->update_of;
    a->article_id = article->id;
    a->source = article->source;
    a->url = article->url;
    a->headline = article->headline;
    a->published_at_ms = article->published_at_ms;
    a->revision = article->revision;
    a->feed_seq = article->feed_seq;
    a->language = article->language;
    a->model = res->model ? (char *)na_model_version(res->model) : "";

    char *cursor = b->arena;
    size_t ev_i = 0;
    int best_priority = 0;
    a->tags = b->tag_ptrs;
    for (size_t i = 0; i < res->n_tags; i++) {
        const struct na_tag_result *r = &res->tags[i];
        if (!r->fired)
            continue;
        const struct na_tag *def = na_ruleset_tag(rs, r->tag);
        Newsalert__V1__TagResult *tr = &b->tags[a->n_tags];
        newsalert__v1__tag_result__init(tr);
        tr->tag = def->name;
        tr->score = r->score;
        tr->threshold = def->threshold;
        tr->confidence = r->confidence;
        tr->priority = (Newsalert__V1__Priority)r->priority;
        if ((int)r->priority > best_priority)
            best_priority = (int)r->priority;
        tr->evidence = &b->ev_ptrs[ev_i];
        for (size_t k = 0; k < r->n_evidence; k++) {
            const struct na_evidence *e = &r->evidence[k];
            const char *text = texts[e->field];
            Newsalert__V1__Evidence *ev = &b->ev[ev_i];
            newsalert__v1__evidence__init(ev);
            ev->field = (Newsalert__V1__Field)e->field;
            ev->start = e->start;
            ev->end = e->end;
            size_t sl = e->end - e->start;
            if (sl > b->max_evidence_bytes)
                sl = na_utf8_floor(text + e->start, b->max_evidence_bytes);
            ev->sentence = copy(&cursor, text + e->start, sl);
            ev->term = copy(&cursor, text + e->term_start, e->term_end - e->term_start);
            ev->term_start = e->term_start;
            ev->term_end = e->term_end;
            ev->weight = e->weight;
            b->ev_ptrs[ev_i++] = ev;
            tr->n_evidence++;
        }
        b->tag_ptrs[a->n_tags++] = tr;
    }
    qsort(a->tags, a->n_tags, sizeof(*a->tags), cmp_tag);
    a->priority = (Newsalert__V1__Priority)best_priority;

    a->actors = b->actor_ptrs;
    for (size_t i = 0; i < res->n_actors; i++) {
        const struct na_actor *def = na_ruleset_actor(rs, res->actors[i].actor);
        Newsalert__V1__Actor *ac = &b->actors[i];
        newsalert__v1__actor__init(ac);
        ac->code = def->code;
        ac->name = def->name;
        ac->kind = (Newsalert__V1__ActorKind)def->kind;
        ac->mentions = res->actors[i].mentions;
        b->actor_ptrs[a->n_actors++] = ac;
    }
    return a;
}

/* An enum value as a lower-case word: PRIORITY_HIGH becomes "high". */
static json_t *enum_word(const ProtobufCEnumDescriptor *d, int value, const char *prefix)
{
    const ProtobufCEnumValue *v = protobuf_c_enum_descriptor_get_value(d, value);
    char word[32];
    const char *s = v ? v->name + strlen(prefix) : "UNSPECIFIED";
    size_t i = 0;
    for (; s[i] && i + 1 < sizeof(word); i++)
        word[i] = (char)(s[i] >= 'A' && s[i] <= 'Z' ? s[i] + 32 : s[i]);
    word[i] = '\0';
    return json_string(word);
}

static json_t *str_or_empty(const char *s)
{
    return json_string(s ? s : "");
}

json_t *na_alert_to_json(const Newsalert__V1__Alert *a)
{
    json_t *o = json_object(), *tags = json_array(), *actors = json_array();

    json_object_set_new(o, "seq", na_json_uint64(a->seq));
    json_object_set_new(o, "topic", str_or_empty(a->topic));
    json_object_set_new(o, "topic_seq", na_json_uint64(a->topic_seq));
    json_object_set_new(o, "epoch", na_json_uint64(a->epoch));
    json_object_set_new(o, "article_id", str_or_empty(a->article_id));
    json_object_set_new(o, "source", str_or_empty(a->source));
    json_object_set_new(o, "url", str_or_empty(a->url));
    json_object_set_new(o, "headline", str_or_empty(a->headline));
    json_object_set_new(o, "published_at_ms", na_json_int64(a->published_at_ms));
    json_object_set_new(o, "received_at_ms", na_json_int64(a->received_at_ms));
    json_object_set_new(o, "revision", json_integer(a->revision));
    json_object_set_new(o, "feed_seq", na_json_uint64(a->feed_seq));
    json_object_set_new(o, "language", str_or_empty(a->language));
    if (a->model && *a->model)
        json_object_set_new(o, "model", json_string(a->model));
    json_object_set_new(
        o, "priority",
        enum_word(&newsalert__v1__priority__descriptor, a->priority, "PRIORITY_"));
    for (size_t i = 0; i < a->n_tags; i++) {
        const Newsalert__V1__TagResult *t = a->tags[i];
        json_t *to = json_object(), *evs = json_array();
        json_object_set_new(to, "tag", str_or_empty(t->tag));
        json_object_set_new(to, "score", json_real(t->score));
        json_object_set_new(to, "threshold", json_real(t->threshold));
        json_object_set_new(to, "confidence", json_real(t->confidence));
        json_object_set_new(
            to, "priority",
            enum_word(&newsalert__v1__priority__descriptor, t->priority, "PRIORITY_"));
        for (size_t k = 0; k < t->n_evidence; k++) {
            const Newsalert__V1__Evidence *e = t->evidence[k];
            json_t *eo = json_object();
            json_object_set_new(
                eo, "field",
                enum_word(&newsalert__v1__field__descriptor, e->field, "FIELD_"));
            json_object_set_new(eo, "start", json_integer(e->start));
            json_object_set_new(eo, "end", json_integer(e->end));
            json_object_set_new(eo, "sentence", str_or_empty(e->sentence));
            json_object_set_new(eo, "term", str_or_empty(e->term));
            json_object_set_new(eo, "term_start", json_integer(e->term_start));
            json_object_set_new(eo, "term_end", json_integer(e->term_end));
            json_object_set_new(eo, "weight", json_real(e->weight));
            json_array_append_new(evs, eo);
        }
        json_object_set_new(to, "evidence", evs);
        json_array_append_new(tags, to);
    }
    json_object_set_new(o, "tags", tags);
    for (size_t i = 0; i < a->n_actors; i++) {
        const Newsalert__V1__Actor *ac = a->actors[i];
        json_t *ao = json_object();
        json_object_set_new(ao, "code", str_or_empty(ac->code));
        json_object_set_new(ao, "name", str_or_empty(ac->name));
        json_object_set_new(
            ao, "kind",
            enum_word(&newsalert__v1__actor_kind__descriptor, ac->kind, "ACTOR_KIND_"));
        json_object_set_new(ao, "mentions", json_integer(ac->mentions));
        json_array_append_new(actors, ao);
    }
    json_object_set_new(o, "actors", actors);
    json_object_set_new(o, "update_of", na_json_uint64(a->update_of));
    json_t *topics = json_array();
    for (size_t i = 0; i < a->n_topics; i++) {
        json_t *t = json_object();
        json_object_set_new(t, "topic", str_or_empty(a->topics[i]->topic));
        json_object_set_new(t, "seq", na_json_uint64(a->topics[i]->seq));
        json_array_append_new(topics, t);
    }
    json_object_set_new(o, "topics", topics);
    return o;
}
