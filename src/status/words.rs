//! Display names: what officials read instead of the keys rules and readings
//! use (`county` → 县（市、区）, `concentration` → 浓度). Built-in names follow
//! `words.md`; the config's `labels:` map adds or overrides them. A key with
//! no display name is left out of a reader's text: never `key=value`.

use std::collections::BTreeMap;

use crate::readings::Labels;

/// Built-in display names of label keys, detail keys and common metric ids.
const BUILT_IN: &[(&str, &str)] = &[
    // labels (words.md)
    ("county", "县（市、区）"),
    ("section", "断面"),
    ("item", "事项"),
    ("project", "项目"),
    ("metric", "指标"),
    ("town", "乡镇"),
    ("village", "村"),
    ("station", "监测点"),
    ("school", "学校"),
    // details
    ("value", "当前值"),
    ("threshold", "目标"),
    ("target", "目标"),
    ("gap", "差距"),
    ("period", "期间"),
    ("month", "月份"),
    ("deadline", "截止日期"),
    ("days_late", "逾期天数"),
    ("concentration", "浓度"),
    ("counties", "参与排名的县（市、区）数"),
    ("class", "水质类别"),
    ("target_class", "目标类别"),
    ("index", "综合指数"),
    ("baseline", "基数"),
    ("tolerance", "容差"),
    ("year", "年度"),
    // metric ids the shipped rules watch by name
    ("new_urban_jobs", "新增城镇居民就业"),
    ("vocational_training", "职业技能培训"),
    ("rural_labor_transfer", "农村劳动力转移就业"),
    ("unemployment_rate", "城镇登记失业率"),
    ("medical_insurance_rate", "基本医疗保险全民参保率"),
    ("milestone_done", "完成情况"),
    ("project_started", "开工情况"),
    ("pm25", "PM2.5"),
    ("pm10", "PM10"),
    ("so2", "二氧化硫"),
    ("no2", "二氧化氮"),
    ("co", "一氧化碳"),
    ("o3_8h", "臭氧日最大8小时平均"),
    ("water_class", "水质类别"),
    ("groundwater_balance", "近12个月地下水补给量减开采量"),
    ("schools_built", "新改扩建学校"),
    ("private_school_share", "义务教育民办学校在校生占比"),
    ("public_kindergarten_share", "公办幼儿园在园幼儿占比"),
    ("grain_area", "粮食播种面积"),
    ("grain_output", "粮食总产量"),
    ("agri_projects_20m", "引进投资2000万元以上农业项目"),
    ("beautiful_courtyards", "创建美丽庭院"),
    ("beautiful_villages", "新建美丽乡村"),
    ("canal_dredged_count", "河渠清淤疏浚条数"),
    ("canal_dredged_km", "河渠清淤疏浚里程"),
    ("farm_service_stations", "标准化乡村为农综合服务站"),
    ("high_value_bases", "千亩以上“万元钱”基地"),
    ("new_family_farms", "新注册家庭农场"),
    ("rural_road_count", "拓宽改造农村公路条数"),
    ("rural_road_km", "拓宽改造农村公路里程"),
    ("shelterbelt_control_rate", "农田林网控制率"),
    ("village_green_coverage", "村庄绿化覆盖率"),
    (
        "waste_sorting_town_share",
        "开展农村生活垃圾源头分类的乡镇(街道)占比",
    ),
];

/// Display names, built-in plus the config's `labels:`, and the names of
/// recipient groups ([`crate::config::Config::group_name`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Words {
    names: BTreeMap<String, String>,
    groups: BTreeMap<String, String>,
}

impl Default for Words {
    fn default() -> Self {
        Words::with(&BTreeMap::new())
    }
}

impl Words {
    /// The built-in names with `configured` on top.
    pub fn with(configured: &BTreeMap<String, String>) -> Words {
        let mut names: BTreeMap<String, String> = BUILT_IN
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        names.extend(configured.iter().map(|(k, v)| (k.clone(), v.clone())));
        Words {
            names,
            groups: BTreeMap::new(),
        }
    }

    /// These words, with the display names of the config's recipient groups.
    pub fn for_config(config: &crate::config::Config) -> Words {
        let mut w = Words::with(&config.labels);
        w.groups = config
            .recipients
            .keys()
            .map(|g| (g.clone(), config.group_name(g)))
            .collect();
        w
    }

    /// A `notify` entry as read: a group's display name, an address as it is.
    pub fn group(&self, key: &str) -> String {
        self.groups
            .get(key)
            .cloned()
            .unwrap_or_else(|| key.to_string())
    }

    /// The display name of a key, if there is one.
    pub fn name(&self, key: &str) -> Option<&str> {
        self.names.get(key).map(String::as_str)
    }

    /// A label value as read: a metric id through its display name, others as they are.
    pub fn value(&self, key: &str, value: &str) -> String {
        if key == "metric" {
            if let Some(name) = self.name(value) {
                return name.to_string();
            }
        }
        value.to_string()
    }

    /// A subject as read: `县（市、区）：南宫；断面：S1`; a label without a
    /// display name shows its value alone; `—` for the rule as a whole.
    pub fn subject(&self, subject: &Labels) -> String {
        if subject.is_empty() {
            return "—".into();
        }
        subject
            .iter()
            .map(|(k, v)| match self.name(k) {
                Some(name) => format!("{name}：{}", self.value(k, v)),
                None => v.clone(),
            })
            .collect::<Vec<_>>()
            .join("；")
    }

    /// The subject's values only, for headings: `南宫` or `南宫、S1`.
    pub fn subject_values(&self, subject: &Labels) -> String {
        subject
            .iter()
            .map(|(k, v)| self.value(k, v))
            .collect::<Vec<_>>()
            .join("、")
    }
}

/// What a history or backtest row says when an alert ends (its new state is
/// `inactive`). The row carries the alert's last message, which is no longer
/// true: it is shown as what was (`此前：…`), after what is true now
/// (words.md: a resolved item never reads as the old problem). `from` is
/// the state that ended (`firing`, `pending`, `no_data`, `error`).
pub fn ended_note(from: &str, previous: &str) -> String {
    let now = match from {
        "no_data" => "应报数据已报送",
        "error" => "规则已恢复正常求值",
        _ => "评估未再发现该问题",
    };
    if previous.trim().is_empty() {
        now.to_string()
    } else {
        format!("{now}（此前：{previous}）")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_read_through_display_names() {
        let w = Words::default();
        let s: Labels = [("county".to_string(), "南宫".to_string())].into();
        assert_eq!(w.subject(&s), "县（市、区）：南宫");
        let m: Labels = [("metric".to_string(), "new_urban_jobs".to_string())].into();
        assert_eq!(w.subject(&m), "指标：新增城镇居民就业");
        let odd: Labels = [("zone".to_string(), "东区".to_string())].into();
        assert_eq!(w.subject(&odd), "东区", "no `zone=`");
        let configured = Words::with(&[("zone".to_string(), "片区".to_string())].into());
        assert_eq!(configured.subject(&odd), "片区：东区");
        assert_eq!(w.subject(&Labels::new()), "—");
    }
}

#[cfg(test)]
mod ended_note_tests {
    use super::ended_note;

    #[test]
    fn an_ended_alert_says_what_is_true_now_then_what_was() {
        assert_eq!(
            ended_note("firing", "失业率 4.6% 超过目标 4.5%"),
            "评估未再发现该问题（此前：失业率 4.6% 超过目标 4.5%）"
        );
        assert_eq!(
            ended_note("no_data", "5月数据未报送"),
            "应报数据已报送（此前：5月数据未报送）"
        );
        assert_eq!(ended_note("error", ""), "规则已恢复正常求值");
    }
}
