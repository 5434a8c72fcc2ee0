import { Router } from 'express';
import { explainMqtt, mqttExplainSchema } from '../decisions/mqtt-explain.ts';
import { parse } from '../http/validate.ts';
import * as responses from '../http/responses.ts';
import type { SidecarContext } from './context.ts';
import { principalOf } from './resource.ts';

/** POST /v1/mqtt/explain: what the broker would decide for an actor's publish or subscribe, and why. */
export function mqttRoutes(ctx: SidecarContext): Router {
  const r = Router();
  ctx.routes.add({ method: 'post', path: '/mqtt/explain', tag: 'evaluate', summary: "Explain an MQTT decision: may this actor publish / subscribe to this topic (app grant, topic rules, rbac permission, namespace)", body: mqttExplainSchema, response: responses.mqttExplain });
  r.post('/mqtt/explain', (req, res) => {
    res.json(explainMqtt(ctx.replica.model, parse(mqttExplainSchema, req.body, 'body'), principalOf(res)));
  });
  return r;
}
