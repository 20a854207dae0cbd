/* The metrics endpoint: GET /metrics answers the engine's statistics (eng_session_stats),
 * the device's memory by heap and purpose and the device's identity in the Prometheus
 * text format, from a libmicrohttpd thread, so Prometheus and Grafana read them unchanged. */
#ifndef TOOL_METRICS_H
#define TOOL_METRICS_H

#include <stddef.h>
#include <stdint.h>

#include "eng_model.h"
#include "vkb.h"

typedef struct tool_metrics tool_metrics;

/* Serves on host:port (port 0: any free one, see tool_metrics_port). NULL with the reason
 * in err. */
tool_metrics *tool_metrics_start(const char *host, uint16_t port, vkb_device *dev, char *err,
                                 size_t err_size);
uint16_t tool_metrics_port(const tool_metrics *m);
/* The session whose statistics are served (NULL: none, before destroying it). */
void tool_metrics_attach(tool_metrics *m, eng_session *s);
void tool_metrics_stop(tool_metrics *m);

/* What GET /metrics answers, for dev and (not NULL) s, for a server of its own: a malloc'd
 * text of *len bytes (NUL-terminated), NULL when out of memory. */
char *tool_metrics_render(vkb_device *dev, eng_session *s, size_t *len);

#endif /* TOOL_METRICS_H */
