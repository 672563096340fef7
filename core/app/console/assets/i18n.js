// Words of the console: Chinese (zh-CN) first, English available. Times are shown in China Standard Time.

const zh = {
  brand: "社会救助工作台", logout: "退出登录", login: "登录", username: "用户名", password: "密码",
  loginTitle: "登录社会救助工作台", loginFailed: "用户名或密码错误", rateLimited: "登录失败次数过多，请稍后再试",
  sessionEnded: "登录已失效，请重新登录", loading: "加载中…",
  nav_dashboard: "辖区概览", nav_search: "检索", nav_alerts: "预警处置", nav_gaps: "政策找人", nav_queue: "审批队列",
  nav_medical: "医疗救助结算", nav_audit: "审计日志", nav_referrals: "转办", nav_simulate: "政策模拟", nav_account: "账户",
  households: "户数", persons: "人数", lowIncomePersons: "低收入人口", openAlerts: "未处置预警",
  childrenOf: "下级区划", tileNote: "区划以色块网格表示（按低收入人口着色）：本系统未提供可分发的行政区划边界数据。",
  byLevel: "按预警等级（未处置）", RED: "红色", ORANGE: "橙色", YELLOW: "黄色", BLUE: "蓝色", GREEN: "绿色",
  PROVINCE: "省", CITY: "市", COUNTY: "县（区）", TOWNSHIP: "乡镇（街道）", VILLAGE: "村（社区）",
  searchHint: "姓名（可部分）、身份证号、户编号", search: "检索", results: "条结果", facets: "分面",
  PERSON: "人员", HOUSEHOLD: "家庭", ALERT: "预警", ENROLLMENT: "救助申请",
  household: "家庭", householdNumber: "户编号", address: "地址", region: "所属区划", members: "家庭成员",
  name: "姓名", idNumber: "身份证号", sex: "性别", MALE: "男", FEMALE: "女", age: "年龄", relation: "与户主关系",
  disability: "残疾等级", chronic: "慢性病", employment: "就业状况", labour: "劳动能力",
  SELF: "户主", SPOUSE: "配偶", CHILD: "子女", PARENT: "父母", GRANDCHILD: "孙子女", GRANDPARENT: "祖父母",
  SIBLING: "兄弟姐妹", OTHER: "其他", GUARDIAN: "监护人", WARD: "被监护人", SUPPORT_OBLIGOR: "赡养/抚养/扶养义务人",
  SUPPORTED: "被赡养/抚养/扶养人",
  relationships: "关系图", economics: "家庭经济状况", perCapita: "人均月收入（元）", assets: "金融资产（元）",
  assessedAt: "核对时间", categories: "低收入类别", DIBAO: "低保", TEKUN: "特困", DIBAO_EDGE: "低保边缘",
  EXPENDITURE_HARDSHIP: "刚性支出困难", RELAPSE_MONITORING: "防止返贫监测",
  eligibility: "救助资格（规则判断）", eligible: "符合", notEligible: "不符合", monthlyAmount: "月救助金（元）",
  enrollments: "救助记录", status: "状态", program: "救助项目", startDate: "开始", endDate: "结束",
  aidChain: "救助链（时间线）", alerts: "预警", level: "等级", score: "风险分", indicators: "触发指标", raisedAt: "预警时间",
  APPLIED: "已申请", VERIFYING: "核查中", REVIEWED: "已审核", APPROVED: "已审批", ACTIVE: "享受中",
  GRADUAL_EXIT: "渐退期", ENDED: "已终止", REJECTED: "不予批准", WITHDRAWN: "已撤回",
  OPEN: "待处置", RESOLVED: "已解决", DISMISSED: "无需处置",
  township: "乡镇（街道）", age_days: "已等待", days: "天", deadline: "处置时限",
  deadlineNotConfigured: "本省未配置预警处置时限", dispose: "处置", note: "处置说明",
  START_VERIFICATION: "开始核查", ENROL: "纳入救助", NO_ACTION_NEEDED: "无需救助", REFER: "转办",
  noteRequired: "请填写处置说明", done: "已完成",
  gapsTitle: "政策找人：符合条件但未纳入救助的家庭", reasons: "理由", apply: "代为申请", applied: "已提交申请",
  allPrograms: "全部项目", next: "下一页", first: "第一页",
  queueTitle: "审批队列", applicant: "申请家庭", appliedAt: "申请时间", decide: "决定",
  REVIEW: "审核", APPROVE: "批准", REJECT: "不予批准", ACTIVATE: "发放", END: "终止", WITHDRAW: "撤回",
  medicalTitle: "医疗救助一站式结算", personId: "人员（ID）", admissionDate: "入院日期", compliantCost: "合规费用（元）",
  insurancePaid: "基本医保和大病保险已支付（元）", majorDisease: "重特大疾病", settle: "结算",
  category: "适用类别", aidAmount: "医疗救助金额（元）", secondary: "再救助金额（元）", outOfPocket: "个人自付（元）",
  auditTitle: "审计日志", at: "时间", actor: "操作人", action: "操作", object: "对象", remote: "来源地址", detail: "详情",
  user: "用户", since: "起始日期", filter: "筛选",
  notAvailable: "此功能的接口尚未上线（服务器未提供该 GraphQL 操作）。",
  notFound: "未找到，或不在您的数据权限范围内。", forbidden: "无权执行此操作。",
  scopes: "数据范围", roles: "角色", changePassword: "修改密码", currentPassword: "当前密码", newPassword: "新密码",
  saved: "已保存", referralsTitle: "转办事项", department: "部门", dueDate: "办理时限", overdue: "逾期",
  simulateTitle: "政策模拟（不写入任何数据）", paramKey: "参数", value: "新值", simulate: "模拟",
  baseline: "现行", reform: "调整后", monthlyCost: "月支出（元）", annualCostChange: "年支出变化（元）",
  open: "打开", goHousehold: "查看家庭", none: "无",
};

const en = {
  brand: "Social assistance console", logout: "Log out", login: "Log in", username: "Username", password: "Password",
  loginTitle: "Log in to the social assistance console", loginFailed: "Wrong username or password",
  rateLimited: "Too many failed logins: try again later", sessionEnded: "Your session ended: log in again",
  loading: "Loading…",
  nav_dashboard: "Regions", nav_search: "Search", nav_alerts: "Alerts", nav_gaps: "Policy finds people",
  nav_queue: "Approval queue", nav_medical: "Medical settlement", nav_audit: "Audit log", nav_referrals: "Referrals",
  nav_simulate: "Simulation", nav_account: "Account",
  households: "Households", persons: "Persons", lowIncomePersons: "Low-income persons", openAlerts: "Open alerts",
  childrenOf: "Divisions", tileNote: "Divisions drawn as a tile grid shaded by low-income persons: no division boundary data that may be shipped is available here.",
  byLevel: "Open alerts by level", RED: "Red", ORANGE: "Orange", YELLOW: "Yellow", BLUE: "Blue", GREEN: "Green",
  PROVINCE: "Province", CITY: "City", COUNTY: "County", TOWNSHIP: "Township", VILLAGE: "Village",
  searchHint: "Name (partial), ID number, household number", search: "Search", results: "results", facets: "Facets",
  PERSON: "Person", HOUSEHOLD: "Household", ALERT: "Alert", ENROLLMENT: "Enrolment",
  household: "Household", householdNumber: "Household no.", address: "Address", region: "Region", members: "Members",
  name: "Name", idNumber: "ID number", sex: "Sex", MALE: "Male", FEMALE: "Female", age: "Age", relation: "Relation to head",
  disability: "Disability level", chronic: "Chronic disease", employment: "Employment", labour: "Labour capacity",
  SELF: "Head", SPOUSE: "Spouse", CHILD: "Child", PARENT: "Parent", GRANDCHILD: "Grandchild", GRANDPARENT: "Grandparent",
  SIBLING: "Sibling", OTHER: "Other", GUARDIAN: "Guardian", WARD: "Ward", SUPPORT_OBLIGOR: "Support obligor",
  SUPPORTED: "Supported person",
  relationships: "Relationships", economics: "Economics", perCapita: "Per-capita monthly income (yuan)",
  assets: "Financial assets (yuan)", assessedAt: "Assessed", categories: "Categories", DIBAO: "Dibao", TEKUN: "Tekun",
  DIBAO_EDGE: "Near-dibao", EXPENDITURE_HARDSHIP: "Expenditure hardship", RELAPSE_MONITORING: "Relapse monitoring",
  eligibility: "Eligibility (rules)", eligible: "eligible", notEligible: "not eligible", monthlyAmount: "Monthly amount (yuan)",
  enrollments: "Enrolments", status: "Status", program: "Program", startDate: "Start", endDate: "End",
  aidChain: "Aid chain (timeline)", alerts: "Alerts", level: "Level", score: "Score", indicators: "Indicators", raisedAt: "Raised",
  APPLIED: "Applied", VERIFYING: "Verifying", REVIEWED: "Reviewed", APPROVED: "Approved", ACTIVE: "Active",
  GRADUAL_EXIT: "Gradual exit", ENDED: "Ended", REJECTED: "Rejected", WITHDRAWN: "Withdrawn",
  OPEN: "Open", RESOLVED: "Resolved", DISMISSED: "Dismissed",
  township: "Township", age_days: "Waiting", days: "days", deadline: "Deadline",
  deadlineNotConfigured: "no disposal deadline configured for this province", dispose: "Dispose", note: "Note",
  START_VERIFICATION: "Start verification", ENROL: "Enrol", NO_ACTION_NEEDED: "No action needed", REFER: "Refer",
  noteRequired: "Write a note first", done: "Done",
  gapsTitle: "Policy finds people: eligible households not enrolled", reasons: "Reasons", apply: "Apply", applied: "Application made",
  allPrograms: "All programs", next: "Next page", first: "First page",
  queueTitle: "Approval queue", applicant: "Household", appliedAt: "Applied", decide: "Decide",
  REVIEW: "Review", APPROVE: "Approve", REJECT: "Reject", ACTIVATE: "Activate", END: "End", WITHDRAW: "Withdraw",
  medicalTitle: "Medical aid settlement", personId: "Person (id)", admissionDate: "Admission date",
  compliantCost: "Compliant cost (yuan)", insurancePaid: "Paid by insurance (yuan)", majorDisease: "Major disease",
  settle: "Settle", category: "Category", aidAmount: "Medical aid (yuan)", secondary: "Second-round aid (yuan)",
  outOfPocket: "Out of pocket (yuan)",
  auditTitle: "Audit log", at: "At", actor: "Actor", action: "Action", object: "Object", remote: "Address", detail: "Detail",
  user: "User", since: "Since", filter: "Filter",
  notAvailable: "This screen's API is not available yet (the server offers no such GraphQL operation).",
  notFound: "Not found, or outside your data scope.", forbidden: "You may not do this.",
  scopes: "Scopes", roles: "Roles", changePassword: "Change password", currentPassword: "Current password",
  newPassword: "New password", saved: "Saved", referralsTitle: "Referrals", department: "Department", dueDate: "Due",
  overdue: "overdue", simulateTitle: "Policy simulation (writes nothing)", paramKey: "Parameter", value: "New value",
  simulate: "Simulate", baseline: "Baseline", reform: "Reform", monthlyCost: "Monthly cost (yuan)",
  annualCostChange: "Annual cost change (yuan)", open: "Open", goHousehold: "Household", none: "none",
};

const dictionaries = { "zh-CN": zh, en };
let lang = localStorage.getItem("aidgraph.lang") || "zh-CN";

export function t(key) { return (dictionaries[lang] && dictionaries[lang][key]) || zh[key] || key; }
export function currentLang() { return lang; }
export function setLang(value) { lang = dictionaries[value] ? value : "zh-CN"; localStorage.setItem("aidgraph.lang", lang);
  document.documentElement.lang = lang; }

const TZ = "Asia/Shanghai";
export function dateTime(iso) {
  if (!iso) return "";
  // The API's DateTime values are UTC without a zone designator: read them as UTC, show them in CST.
  const d = new Date(/[zZ]|[+-]\d\d:?\d\d$/.test(iso) ? iso : iso + "Z");
  return new Intl.DateTimeFormat(lang === "en" ? "en-GB" : "zh-CN", { timeZone: TZ, year: "numeric", month: "2-digit",
    day: "2-digit", hour: "2-digit", minute: "2-digit", hour12: false }).format(d) + " CST";
}
export function date(iso) { return iso || ""; }
export function money(v) { return v === null || v === undefined ? "—" : Number(v).toLocaleString(lang, { minimumFractionDigits: 2, maximumFractionDigits: 2 }); }
document.documentElement.lang = lang;
