/* The agent directory beside the chat: every agent by category (GET /api/agents?category=),
 * each with a button that puts its @mention in the message box. The whole catalogue is also
 * read once at start-up, so a team answer can name the agents it credits. */

import { api, refusal } from "./api.js";
import { $, formError, h, listOf } from "./dom.js";
import { t } from "./i18n.js";
import { state } from "./state.js";

const ALL = "";
let request = 0;

/** Fills state.agents with the whole catalogue (names for team answers); quiet on failure. */
export async function learnAgents() {
  try {
    for (const agent of listOf(await api("/api/agents?limit=50"))) state.agents.set(agent.id, agent);
  } catch {
    /* names then fall back to agent ids */
  }
}

function renderCategories(categories) {
  const select = $("agent-category");
  const chosen = select.value || ALL;
  const total = categories.reduce((sum, c) => sum + c.count, 0);
  select.replaceChildren(
    h("option", { value: ALL }, t("agents.all", { count: total })),
    ...categories.map((c) => h("option", { value: c.id }, t("agents.category_count", { name: t(`agents.category.${c.id}`), count: c.count }))),
  );
  select.value = chosen;
}

function mention(agent) {
  const input = $("composer-input");
  const before = input.value && !/\s$/.test(input.value) ? `${input.value} ` : input.value;
  input.value = `${before}@${agent.id} `;
  input.focus();
  input.setSelectionRange(input.value.length, input.value.length);
  input.dispatchEvent(new Event("input", { bubbles: true }));
}

function renderAgent(agent) {
  return h("li", { className: "agent-card", dataset: { agent: agent.id, category: agent.category } },
    h("div", { className: "agent-head" },
      h("strong", { className: "agent-name" }, agent.name),
      h("span", { className: "muted" }, ` @${agent.id}`),
      h("span", { className: "tag" }, t(`agents.category.${agent.category}`))),
    h("p", { className: "muted small agent-description" }, agent.description),
    h("button", {
      type: "button",
      className: "ghost small",
      "aria-label": t("agents.mention_label", { name: agent.name }),
      onclick: () => mention(agent),
    }, t("agents.mention")));
}

/** The directory for the chosen category (the server filters); a newer choice wins. */
export async function loadAgents() {
  const category = $("agent-category").value || ALL;
  const asked = ++request;
  const params = new URLSearchParams({ limit: "50" });
  if (category) params.set("category", category);
  formError($("agents-error"), "");
  let page;
  try {
    page = await api(`/api/agents?${params}`);
  } catch (err) {
    if (asked === request) formError($("agents-error"), refusal(err));
    return;
  }
  if (asked !== request) return;
  const agents = listOf(page);
  for (const agent of agents) state.agents.set(agent.id, agent);
  renderCategories(page.categories || []);
  $("agent-list").replaceChildren(...agents.map(renderAgent));
  $("agents-summary").textContent = t("agents.shown", { count: agents.length });
}

export function wireAgents() {
  $("agent-category").addEventListener("change", loadAgents);
}
