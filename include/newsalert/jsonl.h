/* Articles written as JSON (one object per line): the readable source of
 * packed feeds and of the labelled corpus. */
#ifndef NEWSALERT_JSONL_H
#define NEWSALERT_JSONL_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "newsalert/error.h"

/* Encodes obj's Article fields (by their proto names) as protobuf bytes in
 * *buf (malloc'd; the caller frees). Unknown keys starting with "_" or named
 * "labels", "split" or "style" are ignored; other unknown keys and wrong
 * types are errors. */
int na_jsonl_article_pack(json_t *obj, uint8_t **buf, size_t *len, struct na_error *err);

/* 64-bit integers in JSON, as protobuf's JSON mapping writes them: as
 * decimal strings, always, so that a reader whose numbers are doubles
 * (JavaScript, jq) cannot round a seq, an epoch or a time in nanoseconds
 * above 2^53. Each returns a new reference (the caller owns it). */
json_t *na_json_int64(int64_t v);
json_t *na_json_uint64(uint64_t v);

/* Reads a 64-bit integer written either way (a JSON integer, or a decimal
 * string as above), as protobuf's JSON parsers accept both. 0, or -1 with
 * err naming key when v is neither or is below min. */
int na_json_get_int64(json_t *v, const char *key, int64_t min, int64_t *out,
                      struct na_error *err);
int na_json_get_uint64(json_t *v, const char *key, uint64_t *out, struct na_error *err);

#endif
